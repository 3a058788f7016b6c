"""The web app speaks Indonesian: every message marked in its templates and code has an
Indonesian translation in the catalog that ships (scheduler/web/locale/id)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from scheduler.web import i18n

REPO = Path(__file__).resolve().parents[2]
PO = REPO / "scheduler" / "web" / "locale" / "id" / "LC_MESSAGES" / "messages.po"


def marked_messages() -> dict[str, str]:
    """Every message marked for translation, as pybabel extracts it with the repository's babel.cfg."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            REPO / "scheduler" / "web", method_map=method_map, keywords={"_": None},
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}}):
        if isinstance(message, str) and message:
            found[message] = filename
    return found


def test_every_marked_message_is_translated_into_indonesian() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="id")
    marked = marked_messages()
    assert len(marked) > 30  # the extraction found the templates and the code
    untranslated = {m: where for m, where in marked.items()
                    if catalog.get(m) is None or not catalog.get(m).string or catalog.get(m).fuzzy}
    assert not untranslated, f"not in the id catalog (pybabel update, then translate): {untranslated}"


def test_babel_cfg_names_the_web_app() -> None:
    cfg = (REPO / "babel.cfg").read_text(encoding="utf-8")
    assert "[python: scheduler/web/**.py]" in cfg and "[jinja2: scheduler/web/templates/**.html]" in cfg


def test_states_are_words_people_use() -> None:
    indonesian = i18n.translations("id")
    assert indonesian.gettext(i18n.STATE_WORDS["pending_approval"]) == "menunggu persetujuan"
    assert indonesian.gettext(i18n.STATE_WORDS["needs_review"]) == "perlu diperiksa"
    assert i18n.translations("en").gettext(i18n.STATE_WORDS["pending_approval"]) == "waiting for approval"
    from scheduler.models import PostStatus

    assert set(i18n.STATE_WORDS) == {s.value for s in PostStatus}
    from scheduler.models import ChannelStatus

    assert set(i18n.CHANNEL_WORDS) == {s.value for s in ChannelStatus}
    assert indonesian.gettext(i18n.CHANNEL_WORDS["needs_reauth"]) == "perlu masuk ulang"
    assert i18n.pick(None) == "id" and i18n.pick("en") == "en" and i18n.pick("fr") == "id"
