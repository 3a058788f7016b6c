"""Template filters: rupiah, Indonesian dates, times with the zone abbreviation, hashtags."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from scheduler.composer import filters

WITA = ZoneInfo("Asia/Makassar")
# 2023-10-25 11:00 UTC = Wednesday 19.00 WITA
WHEN = dt.datetime(2023, 10, 25, 11, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "text"), [
    (1250000, "Rp 1.250.000"), (25000, "Rp 25.000"), (500, "Rp 500"), (0, "Rp 0"), (None, ""),
])
def test_rupiah(value: int | None, text: str) -> None:
    assert filters.rupiah(value) == text


def test_long_date_indonesian_and_english() -> None:
    assert filters.long_date(WHEN, WITA) == "Rabu, 25 Oktober 2023"
    assert filters.long_date(WHEN, WITA, "en") == "Wednesday, 25 October 2023"
    assert filters.long_date(dt.date(2023, 10, 29), WITA) == "Minggu, 29 Oktober 2023"


def test_long_date_uses_the_local_day() -> None:
    # 16:30 UTC on the 25th is already the 26th in Makassar (00.30 WITA) but not in Jakarta (23.30 WIB)
    late = dt.datetime(2023, 10, 25, 16, 30, tzinfo=dt.UTC)
    assert filters.long_date(late, WITA) == "Kamis, 26 Oktober 2023"
    assert filters.long_date(late, ZoneInfo("Asia/Jakarta")) == "Rabu, 25 Oktober 2023"
    assert filters.long_date(late, ZoneInfo("UTC")) == "Rabu, 25 Oktober 2023"


@pytest.mark.parametrize(("zone", "text"), [
    ("Asia/Makassar", "19.00 WITA"), ("Asia/Jakarta", "18.00 WIB"), ("Asia/Pontianak", "18.00 WIB"),
    ("Asia/Jayapura", "20.00 WIT"),
])
def test_time_with_indonesian_zone_abbreviation(zone: str, text: str) -> None:
    assert filters.time_tz(WHEN, ZoneInfo(zone)) == text


def test_time_in_english_and_outside_indonesia() -> None:
    assert filters.time_tz(WHEN, WITA, "en") == "19:00 WITA"
    # no Indonesian abbreviation: the offset, never a misleading name
    assert filters.time_tz(WHEN, ZoneInfo("Europe/Berlin")) == "13.00 UTC+0200"


def test_date_range() -> None:
    end = dt.datetime(2023, 10, 29, 13, 0, tzinfo=dt.UTC)
    assert filters.date_range(WHEN, end, WITA) == "25 Okt – 29 Okt 2023"
    assert filters.date_range(WHEN, WHEN + dt.timedelta(hours=3), WITA) == "Rabu, 25 Oktober 2023"
    assert filters.date_range(WHEN, None, WITA) == "Rabu, 25 Oktober 2023"
    new_year = dt.datetime(2024, 1, 2, 3, 0, tzinfo=dt.UTC)
    assert filters.date_range(WHEN, new_year, WITA) == "25 Okt 2023 – 2 Jan 2024"


@pytest.mark.parametrize(("tags", "limit", "text"), [
    (["UMKM", "#Balikpapan", "kuliner"], None, "#UMKM #Balikpapan #kuliner"),
    (["UMKM", "#UMKM", "oleh oleh"], None, "#UMKM #OlehOleh"),
    (["kue-kue", "jalan-jalan", "#Kue-Kue", "umkm", "oleh-oleh_2026"], None, "#KueKue #JalanJalan #umkm #OlehOleh_2026"),
    (["UMKM", "umkm", "Umkm"], None, "#UMKM"),
    (["kue&kopi", "-", "#"], None, "#kuekopi"),
    ("kopi;#kuliner", None, "#kopi #kuliner"),
    (["a", "b", "c", "d"], 2, "#a #b"),
    ([], None, ""),
    (None, None, ""),
])
def test_hashtags(tags: list[str] | str | None, limit: int | None, text: str) -> None:
    assert filters.hashtags(tags, limit) == text
