"""Migration 0004_metrics builds exactly the tables the models describe, on SQLite and PostgreSQL,
and its downgrade removes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from scheduler.models import Base
from scheduler.shipped import migrations_dir
from scheduler.storage.db import Database

TABLES = {"metrics", "metric_schedule", "metric_channels"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_db")  # already upgraded
    database = Database(f"sqlite:///{tmp_path}/m.db")
    database.upgrade()
    return database


def test_the_metrics_tables_match_the_models_and_downgrade_removes_them(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(ctx, Base.metadata)
                 if any(t in repr(d) for t in TABLES)]
    assert diffs == []
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert TABLES <= set(inspect(db.engine).get_table_names())
