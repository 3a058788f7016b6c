"""One reading of yes/no words and of times for every front door: settings, import files,
channel options, the CLI's --at and the web app's filters."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from scheduler import importer, planner
from scheduler.config import load_settings
from scheduler.errors import ValidationError
from scheduler.platforms.webhook import WebhookAdapter
from scheduler.values import FALSE_WORDS, TRUE_WORDS, human_duration, parse_bool, parse_when
from scheduler.web.params import flag

JAKARTA = ZoneInfo("Asia/Jakarta")

ACCEPTED = {
    "2027-12-01 09:00": dt.datetime(2027, 12, 1, 2, 0, tzinfo=dt.UTC),
    "2027-12-01T09:00": dt.datetime(2027, 12, 1, 2, 0, tzinfo=dt.UTC),
    " 2027-12-01 09:05:30 ": dt.datetime(2027, 12, 1, 2, 5, 30, tzinfo=dt.UTC),
    "2027-12-01T09:00+07:00": dt.datetime(2027, 12, 1, 2, 0, tzinfo=dt.UTC),
    "2027-12-01T02:00Z": dt.datetime(2027, 12, 1, 2, 0, tzinfo=dt.UTC),
}
REFUSED = ["20271201T0900", "2027-12-01 9:05", "2027-12-01", "2027-12-01 25:00", "1 Dec 2027 09:00", "tomorrow", "", "2027-13-01 09:00"]


@pytest.mark.parametrize(("text", "utc"), ACCEPTED.items())
def test_every_front_door_reads_the_same_times(text: str, utc: dt.datetime) -> None:
    assert parse_when(text, JAKARTA) == utc
    assert planner.parse_when(text, JAKARTA) == utc  # --at
    assert importer.parse_when(text, JAKARTA) == utc  # starts_at / ends_at cells


@pytest.mark.parametrize("text", REFUSED)
def test_every_front_door_refuses_the_same_times(text: str) -> None:
    # 20271201T0900 used to pass the importer (fromisoformat's basic form) and fail --at.
    with pytest.raises(ValueError):
        parse_when(text, JAKARTA)
    with pytest.raises(ValidationError, match="--at"):
        planner.parse_when(text, JAKARTA)
    with pytest.raises(ValueError):
        importer.parse_when(text, JAKARTA)


def test_a_date_without_a_time_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="has no time.*2027-12-01 09:00"):
        parse_when("2027-12-01", JAKARTA)


@pytest.mark.parametrize("word", sorted(TRUE_WORDS | {"YA", " Yes "}))
def test_true_words_are_true_in_settings_import_files_options_and_forms(word: str) -> None:
    assert parse_bool(word) is True
    assert importer.parse_bool(word) is True  # y and on were refused by the importer before
    assert load_settings({"PROMO_DATABASE_URL": "sqlite://", "PROMO_REQUIRE_APPROVAL": word}).require_approval
    assert flag("approved", word, JAKARTA) is True  # ya and tidak were refused by the web forms before
    assert WebhookAdapter.rules_for({"IDEMPOTENT": word}).idempotent_for != WebhookAdapter.rules.idempotent_for


@pytest.mark.parametrize("word", sorted(FALSE_WORDS | {"TIDAK"}))
def test_false_words_are_false_everywhere(word: str) -> None:
    assert parse_bool(word) is False
    assert importer.parse_bool(word) is False
    assert not load_settings({"PROMO_DATABASE_URL": "sqlite://", "PROMO_REQUIRE_APPROVAL": word}).require_approval
    assert flag("approved", word, JAKARTA) is False


@pytest.mark.parametrize("word", ["maybe", "2", "benar"])
def test_other_words_are_refused_naming_the_accepted_ones(word: str) -> None:
    with pytest.raises(ValueError, match="ya/tidak"):
        parse_bool(word)
    with pytest.raises(ValueError, match="ya/tidak"):
        importer.parse_bool(word)


@pytest.mark.parametrize(("delta", "text"), [(dt.timedelta(days=2), "2d"), (dt.timedelta(hours=36), "36h"),
                                             (dt.timedelta(minutes=90), "1.5h"), (dt.timedelta(minutes=30), "30m"),
                                             (dt.timedelta(seconds=45), "45s")])
def test_durations_are_written_as_settings_are(delta: dt.timedelta, text: str) -> None:
    assert human_duration(delta) == text
