"""Migrations with several hosts: concurrent upgrades, the schema check `promo serve` makes,
and the filter indexes (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from scheduler.models import Base
from scheduler.storage.db import Database
from tests.conftest import pg_schema_url


def _head() -> str:
    from alembic.script import ScriptDirectory

    from scheduler.shipped import migrations_dir

    return str(ScriptDirectory(str(migrations_dir())).get_current_head())


HEAD = _head()


def _upgrade_together(url: str, n: int = 3) -> list[BaseException]:
    """``n`` hosts run `promo db upgrade` at the same moment; returns what they raised."""
    dbs = [Database(url) for _ in range(n)]
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        start.wait()
        try:
            db.upgrade()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for db in dbs:
        db.dispose()
    return errors


def _versions(url: str) -> list[str]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        db.dispose()


def test_hosts_upgrading_postgres_at_once_migrate_once_without_error() -> None:
    with pg_schema_url() as url:
        assert _upgrade_together(url) == []
        assert _versions(url) == [HEAD]


def test_hosts_upgrading_sqlite_at_once_migrate_once_without_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/promo.db"
    assert _upgrade_together(url) == []
    assert _versions(url) == [HEAD]


def test_filter_indexes_exist_and_the_models_match_the_migrations(any_db: Database) -> None:
    with any_db.engine.connect() as conn:
        insp = inspect(conn)
        history = {i["name"]: i["column_names"] for i in insp.get_indexes("history")}
        posts = {i["name"]: i["column_names"] for i in insp.get_indexes("posts")}
        assert history["ix_history_channel_started"] == ["channel_id", "started_at"]
        assert history["ix_history_to_status_started"] == ["to_status", "started_at"]
        assert history["ix_history_outcome_started"] == ["outcome", "started_at"]
        assert history["ix_history_post_id"] == ["post_id"]
        assert posts["ix_posts_status_scheduled"] == ["status", "scheduled_at"]
        assert posts["ix_posts_channel_status"] == ["channel_id", "status"]
        assert posts["ix_posts_product_id"] == ["product_id"] and posts["ix_posts_event_id"] == ["event_id"]
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "index" in str(d[0] if isinstance(d, tuple) else d[0][0])] == []
