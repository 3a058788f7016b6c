"""Small helpers shared by the Mastodon, LinkedIn and Discord adapters (and Facebook's reconcile).

Parsing ISO-8601 times, marking steps that cannot publish anything, and matching a post
against the account's newest posts when reconciling. (Reading a JSON body and appending a
link that fits are in ``base``, for every adapter.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from scheduler.errors import Transient, UnknownOutcome
from scheduler.platforms.base import ReadyPost

T = TypeVar("T")

#: How much earlier than the post row a platform timestamp may be (clock skew) and still match.
SKEW = dt.timedelta(minutes=5)


def parse_iso(value: object) -> dt.datetime | None:
    """An aware UTC datetime from an ISO-8601 string (``Z`` suffix allowed), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


async def before_publishing(step: Awaitable[T]) -> T:
    """Run a step that happens before the post is created (upload, lookup, token refresh).

    A timeout there cannot have published anything, so ``UnknownOutcome`` from
    :meth:`Adapter.send` becomes ``Transient`` and the dispatcher may simply retry.
    """
    try:
        return await step
    except UnknownOutcome as exc:
        raise Transient(f"{exc} (before the post was created: nothing was published)", status=exc.status) from None


def find_recent(
    items: Iterable[T],
    post: ReadyPost,
    *,
    same: Callable[[T], bool],
    created: Callable[[T], dt.datetime | None],
    complete: bool,
) -> tuple[T | None, bool]:
    """Look for ``post`` in a newest-first list of the account's posts.

    Returns ``(match, certain)``: the matching item, or ``None`` with ``certain=True`` when
    the list reaches back before the first attempt that may have published it (``post.since``;
    or is the whole list) so the post is certainly not there.
    """
    since = post.since - SKEW
    reached_back = complete
    for item in items:
        when = created(item)
        if when is not None and when < since:
            reached_back = True
            break
        if same(item):
            return item, True
    return None, reached_back
