"""Files that ship with promo: the default post templates and the Alembic migrations.

The repository keeps one copy of each, in its top-level ``templates/`` and ``migrations/``
folders; the wheel carries them inside the package as ``scheduler/_shipped/templates`` and
``scheduler/_shipped/migrations`` (the build maps them, see ``pyproject.toml``). The
functions here find them in either place, so ``promo`` works the same from a checkout
(editable install) and from an installed wheel, whatever the current folder.

Both are plain folders on disk (Alembic and Jinja2's file loader read them by path), so
the package's own location is used rather than a zip-capable resource reader.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from scheduler.errors import PromoError, ValidationError

PACKAGE = Path(__file__).resolve().parent
#: Inside an installed wheel.
INSTALLED = PACKAGE / "_shipped"
#: A checkout (editable install): the package's parent folder, recognised by its pyproject.toml.
CHECKOUT = PACKAGE.parent


def _find(name: str) -> Path:
    installed = INSTALLED / name
    if installed.is_dir():
        return installed
    checkout = CHECKOUT / name
    if checkout.is_dir() and (CHECKOUT / "pyproject.toml").is_file():
        return checkout
    raise PromoError(f"promo's shipped {name} are missing (looked in {installed} and {checkout}): "
                      "reinstall promo-scheduler")


def templates_dir() -> Path:
    """The post templates that ship with promo (``<kind>/<platform>.j2``, ``_default.j2`` fallbacks)."""
    return _find("templates")


def migrations_dir() -> Path:
    """The Alembic script folder (``env.py``, ``versions/``)."""
    return _find("migrations")


def shipped_templates() -> list[Path]:
    """Every shipped template file, relative to :func:`templates_dir`, sorted."""
    root = templates_dir()
    return sorted(p.relative_to(root) for p in root.rglob("*.j2") if p.is_file())


@dataclass(frozen=True)
class Exported:
    """One file written by :func:`export_templates`."""

    path: Path
    replaced: bool  # an existing file was overwritten (only with ``force``)


def export_templates(dest: Path, force: bool = False) -> list[Exported]:
    """Copy the shipped templates into ``dest`` (created if needed) for staff to edit.

    Refuses, writing nothing, when ``dest`` is not a folder or when any file it would write
    already exists, unless ``force`` (then those files are overwritten). Files in ``dest``
    that promo does not ship are never touched.
    """
    source = templates_dir()
    names = shipped_templates()
    if dest.exists() and not dest.is_dir():
        raise ValidationError(f"{dest} exists and is not a folder")
    in_the_way = [dest / n for n in names if (dest / n).exists() or (dest / n).is_symlink()]
    not_files = [p for p in in_the_way if not p.is_file()]
    if not_files:
        raise ValidationError("cannot write templates over what is not a file: " + ", ".join(map(str, not_files)))
    if in_the_way and not force:
        shown = ", ".join(str(p) for p in in_the_way[:5]) + (f" and {len(in_the_way) - 5} more"
                                                              if len(in_the_way) > 5 else "")
        raise ValidationError(f"{len(in_the_way)} of the {len(names)} template files already exist ({shown}); "
                          "nothing was written. Use --force to overwrite them, or choose another folder")
    written: list[Exported] = []
    for name in names:
        target = dest / name
        replaced = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
        written.append(Exported(target, replaced))
    return written
