"""The post templates staff may edit."""

from __future__ import annotations

from pathlib import Path

from scheduler.actions import Actor, require
from scheduler.shipped import Exported, export_templates


def export(actor: Actor, dest: Path, *, force: bool = False) -> list[Exported]:
    """Copy the shipped templates into ``dest`` (see :func:`scheduler.shipped.export_templates`)."""
    require(actor, "templates.export")
    return export_templates(dest, force=force)
