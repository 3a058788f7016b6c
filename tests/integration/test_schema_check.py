"""`promo serve` refuses a database whose schema is older or newer than its code, naming what to do.

Several processes (several releases, during a rolling upgrade) share one database: a process
must not write rows the schema does not expect.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from scheduler.errors import ConfigError
from scheduler.shipped import migrations_dir
from scheduler.storage.db import Database
from tests.helpers import cli_in, run_cli


def _upgrade_to(db: Database, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_serve_refuses_an_older_schema_and_names_the_upgrade(tmp_path: Path, monkeypatch, capsys) -> None:
    for key, value in {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/old.db", "PROMO_HEALTH_PORT": "0",
                       "PROMO_ENV_FILE": str(tmp_path / "none.env")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    db = Database(f"sqlite:///{tmp_path}/old.db")
    _upgrade_to(db, "0001")  # what the previous release created
    code, out = run_cli(capsys, "serve")
    assert code != 0
    assert "older than this promo's" in out and "run `promo db upgrade`" in out, out
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    db.check_schema()  # after the upgrade it starts


def test_serve_refuses_a_schema_from_a_newer_release(tmp_path: Path, monkeypatch, capsys) -> None:
    cli_in(monkeypatch, tmp_path, {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/new.db", "PROMO_HEALTH_PORT": "0",
                                   "PROMO_ENV_FILE": str(tmp_path / "none.env")})
    db = Database(f"sqlite:///{tmp_path}/new.db")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    code, out = run_cli(capsys, "serve")
    assert code != 0
    assert "0099" in out and "a newer promo upgraded it" in out, out


def test_a_current_schema_passes_and_an_empty_database_is_told_to_upgrade(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError, match=r"no tables yet: run `promo db upgrade`"):
        db.check_schema()
    _upgrade_to(db, "head")
    db.check_schema()


def test_the_check_on_postgresql(pg_db: Database) -> None:
    pg_db.check_schema()
    with pg_db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(ConfigError, match=r"older than this promo's \d{4}: run `promo db upgrade`"):
        pg_db.check_schema()
