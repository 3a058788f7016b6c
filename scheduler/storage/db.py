"""Engines, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.errors import ConfigError
from scheduler.shipped import migrations_dir

READ_ONLY = "promo_read_only"
#: pg_advisory_xact_lock key held while migrating (any fixed 64-bit number; "promo" in ASCII).
MIGRATION_LOCK_KEY = 0x70726F6D6F


@dataclass(frozen=True)
class SchemaState:
    """``state``: "current" (the code's newest revision), "behind" (older, or no tables) or "ahead"."""

    state: str
    current: str | None
    head: str


def make_engine(url: str, busy_seconds: float = 30.0, **kwargs: Any) -> Engine:
    """An engine with SQLite's WAL journal, foreign keys and a busy timeout switched on."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": busy_seconds, "check_same_thread": False})
        busy_ms = int(kwargs["connect_args"].get("timeout", busy_seconds) * 1000)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's transaction control issue BEGIN itself (see below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front, so two processes never both read
            # a due post and then race to claim it (and never deadlock upgrading a lock).
            # Read-only sessions begin DEFERRED: under WAL they never wait for a writer,
            # so `promo status` still answers while a hung service holds the write lock.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, **kwargs)
    except Exception as exc:  # bad URL or a driver that is not installed
        raise ConfigError(f"PROMO_DATABASE_URL: {exc}") from None


class Database:
    """An engine plus a session factory."""

    def __init__(self, url: str, busy_seconds: float = 30.0, **kwargs: Any):
        self.url = url
        self.engine = make_engine(url, busy_seconds, **kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for commands that only read: it never takes or waits for the write lock.

        Anything it would write is rolled back; on SQLite it reads the last committed
        state even while another process is in the middle of a write transaction.
        """
        with self.sessions() as session:
            session.connection(execution_options={READ_ONLY: True})
            try:
                yield session
            finally:
                session.expunge_all()  # what was read stays readable after the block
                session.rollback()

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(migrations_dir()))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self) -> None:
        """Apply every Alembic migration (``promo db upgrade``), one host at a time.

        Several hosts may run it at once (each unit's ``ExecStartPre``): on PostgreSQL the
        migration runs under a transaction-scoped advisory lock, so the second waits for the
        first to commit and then finds nothing left to do. On SQLite the transaction begins
        IMMEDIATE (see :func:`make_engine`), which takes the database's write lock first.
        """
        from alembic import command

        cfg = self._alembic_config()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def schema_state(self) -> SchemaState:
        """The database's revision against the newest one this code ships."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        head = script.get_current_head()
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            state = "current"
        elif current is None:
            state = "behind"
        else:
            try:
                known = {rev.revision for rev in script.walk_revisions()}
            except Exception:  # noqa: BLE001 - a broken chain reads as "not ours"
                known = set()
            state = "behind" if current in known else "ahead"
        return SchemaState(state, current, head or "")

    def require_current_schema(self) -> None:
        """Refuse to run (``promo serve``) on a schema older or newer than this code."""
        s = self.schema_state()
        where = self.engine.url.render_as_string(hide_password=True)
        if s.state == "behind":
            was = f"revision {s.current}" if s.current else "no tables yet"
            raise ConfigError(f"the database {where} has {was}; this version of promo needs revision {s.head}: "
                              "stop every promo process, run `promo db upgrade`, then start them again")
        if s.state == "ahead":
            raise ConfigError(f"the database {where} is at revision {s.current}, newer than this version of promo "
                              f"knows (its newest is {s.head}): upgrade promo on this host (then `promo db upgrade` "
                              "is a no-op), or point it at the right database")

    def is_current(self) -> bool:
        """True when the schema exists (migrations applied)."""
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return inspect(conn).has_table("posts")

    def ping(self) -> None:
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
