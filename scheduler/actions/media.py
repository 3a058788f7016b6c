"""Media: delete the image files no post needs any more (``promo media prune``; housekeeping
does it daily on its own, see :mod:`scheduler.mediaprune`)."""

from __future__ import annotations

from scheduler import mediaprune
from scheduler.actions import Actor, Context, require
from scheduler.mediaprune import Pruned


def prune_media(ctx: Context, actor: Actor, *, dry_run: bool = False) -> Pruned:
    """Delete (or with ``dry_run`` list) the media files no post or record needs; audited."""
    require(actor, "media.prune")
    result = mediaprune.prune(ctx.settings, ctx.db, actor=actor.name, dry_run=dry_run)
    assert result is not None  # only a housekeeping run (only_if_due) may be skipped
    return result
