"""--queue: the next free slot of a channel, per weekday, in the channel's own timezone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import load_settings
from scheduler.errors import ValidationError
from scheduler.planner import next_free_slot

WITA = ZoneInfo("Asia/Makassar")


def channel(**keys: str):
    env = {"PROMO_CHANNELS": "outbox", **{f"PROMO_CHANNEL_OUTBOX_{k}": v for k, v in keys.items()}}
    cfg = load_settings(env).channel("outbox")
    assert cfg is not None
    return cfg


def local(tz: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz).astimezone(dt.UTC)


def test_next_slot_later_the_same_day() -> None:
    cfg = channel(SLOTS="09:00,12:30,19:00")
    # Wednesday 25 Oct 2023, 10:00 WITA → 12:30 WITA
    assert next_free_slot(cfg, local(WITA, 2023, 10, 25, 10, 0), set()) == local(WITA, 2023, 10, 25, 12, 30)


def test_exactly_at_a_slot_takes_the_next_one() -> None:
    cfg = channel(SLOTS="09:00,12:30")
    assert next_free_slot(cfg, local(WITA, 2023, 10, 25, 9, 0), set()) == local(WITA, 2023, 10, 25, 12, 30)


def test_across_midnight() -> None:
    cfg = channel(SLOTS="09:00,19:00")
    # 23:30 WITA on Wednesday is 15:30 UTC; the next slot is Thursday 09:00 WITA
    assert next_free_slot(cfg, local(WITA, 2023, 10, 25, 23, 30), set()) == local(WITA, 2023, 10, 26, 9, 0)


def test_taken_slots_are_skipped() -> None:
    cfg = channel(SLOTS="09:00,19:00")
    taken = {local(WITA, 2023, 10, 25, 19, 0), local(WITA, 2023, 10, 26, 9, 0)}
    assert next_free_slot(cfg, local(WITA, 2023, 10, 25, 10, 0), taken) == local(WITA, 2023, 10, 26, 19, 0)


def test_channel_timezone_differs_from_the_organisation() -> None:
    jkt, jayapura = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
    cfg = channel(SLOTS="09:00", TIMEZONE="Asia/Jayapura")
    # 07:30 WITA is 08:30 WIT: 09:00 WIT today (= 08:00 WITA) is still ahead
    after = local(WITA, 2023, 10, 25, 7, 30)
    assert next_free_slot(cfg, after, set()) == local(jayapura, 2023, 10, 25, 9, 0)
    assert next_free_slot(cfg, after, set()) == local(WITA, 2023, 10, 25, 8, 0)
    # and a Jakarta channel at 09:00 WIB is 10:00 WITA
    cfg = channel(SLOTS="09:00", TIMEZONE="Asia/Jakarta")
    assert next_free_slot(cfg, after, set()) == local(jkt, 2023, 10, 25, 9, 0)


def test_channel_day_is_its_own_local_day() -> None:
    # 23:30 UTC Friday is already Saturday 08:30 in Jayapura: the Saturday slots apply
    cfg = channel(SLOTS="09:00", SLOTS_SAT="10:00", TIMEZONE="Asia/Jayapura")
    after = dt.datetime(2023, 10, 27, 23, 30, tzinfo=dt.UTC)
    assert next_free_slot(cfg, after, set()) == local(ZoneInfo("Asia/Jayapura"), 2023, 10, 28, 10, 0)


def test_weekday_specific_slots() -> None:
    cfg = channel(SLOTS="09:00,19:00", SLOTS_SAT="11:00", SLOTS_SUN="")
    # Friday 27 Oct 20:00 → Saturday 11:00 (not 09:00)
    assert next_free_slot(cfg, local(WITA, 2023, 10, 27, 20, 0), set()) == local(WITA, 2023, 10, 28, 11, 0)
    # Saturday 12:00 → no Sunday slots → Monday 09:00
    assert next_free_slot(cfg, local(WITA, 2023, 10, 28, 12, 0), set()) == local(WITA, 2023, 10, 30, 9, 0)


def test_only_weekday_slots_configured() -> None:
    cfg = channel(SLOTS_SAT="10:00")
    assert next_free_slot(cfg, local(WITA, 2023, 10, 25, 10, 0), set()) == local(WITA, 2023, 10, 28, 10, 0)


def test_daylight_saving_gap_is_skipped() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cfg = channel(SLOTS="02:30,09:00", TIMEZONE="Europe/Berlin")
    # 26 March 2023: 02:30 does not exist in Berlin
    after = local(berlin, 2023, 3, 26, 0, 0)
    assert next_free_slot(cfg, after, set()) == local(berlin, 2023, 3, 26, 9, 0)


def test_no_slots_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="PROMO_CHANNEL_OUTBOX_SLOTS"):
        next_free_slot(channel(), local(WITA, 2023, 10, 25, 10, 0), set())
