"""Words that are types: post kinds and highlight statuses are enums in scheduler/models.py, the
one list every other module reads."""

from __future__ import annotations

from scheduler.config import DEFAULT_MAX_LATENESS, POST_KINDS, load_settings
from scheduler.models import HighlightStatus, PostKind
from tests.unit.test_composer import ALL_TEMPLATES


def test_every_post_kind_has_a_maximum_lateness_and_templates_and_nothing_else_does() -> None:
    assert set(DEFAULT_MAX_LATENESS) == set(PostKind) and set(POST_KINDS) == set(PostKind)
    assert {name.split("/")[0] for name in ALL_TEMPLATES} == {k.value for k in PostKind}


def test_a_kinds_lateness_is_found_by_its_plain_name_too() -> None:
    # Post rows hold the kind as text; the setting it is read with is named after it.
    settings = load_settings({"PROMO_DATABASE_URL": "sqlite://", "PROMO_MAX_LATENESS_EVENT_DAYOF": "90m"})
    assert settings.lateness("event_dayof") == settings.lateness(PostKind.EVENT_DAYOF)
    assert settings.lateness("event_dayof").total_seconds() == 90 * 60


def test_highlight_statuses_are_the_words_people_see() -> None:
    # `promo highlight history` and the dashboard show these as they are stored.
    assert [s.value for s in HighlightStatus] == ["created", "skipped", "nothing_eligible", "expired", "cancelled"]
    assert f"{HighlightStatus.NOTHING_ELIGIBLE}" == "nothing_eligible"


def test_every_attempt_outcome_the_code_writes_can_be_filtered_on() -> None:
    # `promo history --status X` (and the dashboard) accept views.OUTCOMES; an outcome the
    # dispatcher writes but the filter refuses could never be looked up.
    import ast
    from pathlib import Path

    from scheduler import budget, views
    from scheduler.storage import claims

    written = {budget.OUTCOME, *claims.UNCERTAIN_OUTCOMES}
    retry = ast.parse((Path(__file__).resolve().parents[2] / "scheduler" / "retry.py").read_text())
    for call in ast.walk(retry):  # out(PostStatus.X, "outcome", …) in the retry policy
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "out" and len(call.args) > 1:
            if isinstance(call.args[1], ast.Constant):
                written.add(call.args[1].value)
            elif isinstance(call.args[1], ast.Name):  # outcome = "absent" if … else "transient"
                written |= {"absent", "transient"}
    assert written - set(views.OUTCOMES) == set()
