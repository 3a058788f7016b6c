"""The shipped templates and migrations are found from the checkout, and `promo templates export`
copies the templates for staff to edit without ever overwriting their work unasked.

The installed wheel is covered by tests/e2e/test_installed_wheel.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler import shipped
from scheduler.cli import main
from scheduler.config import load_settings
from scheduler.errors import ValidationError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = Path("product_highlight") / "_default.j2"


def test_the_checkout_uses_its_one_copy() -> None:
    assert shipped.templates_dir() == REPO / "templates"
    assert shipped.migrations_dir() == REPO / "migrations"
    assert not (REPO / "scheduler" / "_shipped").exists()  # no second copy in the repository
    assert DEFAULT in shipped.shipped_templates()


def test_without_a_templates_folder_here_the_shipped_ones_are_used(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).templates_dir == REPO / "templates"
    (tmp_path / "templates").mkdir()
    assert load_settings({}).templates_dir == Path("templates")


def test_export_writes_every_template(tmp_path: Path) -> None:
    written = shipped.export_templates(tmp_path / "ours")
    assert sorted(w.path.relative_to(tmp_path / "ours") for w in written) == shipped.shipped_templates()
    assert not any(w.replaced for w in written)
    assert (tmp_path / "ours" / DEFAULT).read_bytes() == (REPO / "templates" / DEFAULT).read_bytes()


def test_export_refuses_when_one_file_exists_and_writes_nothing(tmp_path: Path) -> None:
    mine = tmp_path / DEFAULT
    mine.parent.mkdir()
    mine.write_text("punya kami\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"1 of the \d+ template files already exist .*--force"):
        shipped.export_templates(tmp_path)
    assert mine.read_text(encoding="utf-8") == "punya kami\n"
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == [mine]  # nothing else written either


def test_force_overwrites_shipped_names_only(tmp_path: Path) -> None:
    mine = tmp_path / DEFAULT
    own = tmp_path / "product_highlight" / "mastodon.j2"  # a template staff added themselves
    mine.parent.mkdir()
    mine.write_text("punya kami\n", encoding="utf-8")
    own.write_text("buatan sendiri\n", encoding="utf-8")
    written = shipped.export_templates(tmp_path, force=True)
    assert [w.path for w in written if w.replaced] == [mine]
    assert mine.read_bytes() == (REPO / "templates" / DEFAULT).read_bytes()
    assert own.read_text(encoding="utf-8") == "buatan sendiri\n"


def test_export_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValidationError, match="notes.txt exists and is not a folder"):
        shipped.export_templates(tmp_path / "notes.txt")


def test_promo_templates_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    for key in list(os.environ):
        if key.startswith("PROMO_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    assert main(["templates", "export", "edit"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {Path('edit') / DEFAULT}" in out
    assert f"PROMO_TEMPLATES_DIR={tmp_path / 'edit'}" in out

    assert main(["templates", "export", "edit"]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "nothing was written" in err and "--force" in err

    assert main(["templates", "export", "edit", "--force"]) == 0
    assert f"replaced {Path('edit') / DEFAULT}" in capsys.readouterr().out
