"""The web app's languages: Indonesian by default, English on request.

Messages are English msgids marked in the templates (``{{ _("…") }}``) and the code; their
Indonesian in ``locale/id/LC_MESSAGES/messages.po``. The ``.po`` files ship in the package and
are compiled in memory on first use (Babel), so the installed wheel needs no build step.
Refresh the catalog after changing a message: ``pybabel extract -F babel.cfg -o /tmp/messages.pot .``
then ``pybabel update -i /tmp/messages.pot -d scheduler/web/locale``.
"""

from __future__ import annotations

import functools
import gettext
import io
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT = "id"


def _(message: str) -> str:
    return message


#: A post's state as people say it (the msgid is English; the Indonesian is in the catalog).
STATE_WORDS = {
    "draft": _("draft"),
    "pending_approval": _("waiting for approval"),
    "scheduled": _("scheduled"),
    "publishing": _("publishing"),
    "retry_wait": _("waiting to retry"),
    "published": _("published"),
    "failed": _("failed"),
    "needs_review": _("needs checking"),
    "expired": _("expired"),
    "cancelled": _("cancelled"),
}

#: A channel's state as people say it.
CHANNEL_WORDS = {"active": _("active"), "paused": _("paused"), "needs_reauth": _("needs signing in again")}

#: Roles as shown next to a user's name.
ROLE_WORDS = {"viewer": _("viewer"), "editor": _("editor"), "approver": _("approver"), "admin": _("admin")}


def pick(asked: str | None) -> str:
    """The language for a visitor not logged in: Indonesian unless they asked (``?lang=en``)."""
    return asked if asked in LANGUAGES else DEFAULT


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (English is the msgids themselves)."""
    if language not in LANGUAGES or language == "en":
        return gettext.NullTranslations()
    po = resources.files("scheduler.web").joinpath("locale", language, "LC_MESSAGES", "messages.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
