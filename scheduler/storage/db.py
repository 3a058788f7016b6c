"""Engines, sessions and migrations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, DisconnectionError

from scheduler.errors import ConfigError
from scheduler.shipped import migrations_dir

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

_T = TypeVar("_T")
READ_ONLY = "promo_read_only"
#: pg_advisory_xact_lock key held while migrating (any fixed 64-bit number; "promo" in ASCII).
MIGRATION_LOCK_KEY = 0x70726F6D6F


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
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # bad URL or a driver that is not installed
        raise ConfigError(f"PROMO_DATABASE_URL: {exc}") from None
    _ping_when_idle(engine)
    return engine


#: A pooled connection that sat unused longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat idle (``pool_pre_ping`` pings every
    checkout: a round trip per transaction, ~170 ms of a 2,570-post burst on PostgreSQL).

    A connection the server dropped while it sat idle (a restart, an idle timeout) is then found
    before use and replaced. One dropped while in use, or in the seconds since, fails its statement;
    SQLAlchemy then invalidates the whole pool, and :func:`retry_disconnect` runs the transaction
    again on fresh connections.
    """

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["promo_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("promo_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"connection dropped while idle: {exc}") from exc


def retry_disconnect(fn: Callable[[], _T]) -> _T:
    """Run ``fn`` (one whole transaction); once more if the database connection was lost in it
    (the server restarted or ended the session: the transaction did not commit, and the pool's
    older connections are already invalidated)."""
    try:
        return fn()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return fn()


class Database:
    """An engine plus a session factory."""

    def __init__(self, url: str, busy_seconds: float = 30.0, **kwargs: Any):
        self.url = url
        self.busy_seconds = busy_seconds
        self.engine = make_engine(url, busy_seconds, **kwargs)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The ORM's session factory, made on first use: a command that only reads through
        :meth:`read_connection` (``promo history``) starts without importing the ORM."""
        from sqlalchemy.orm import sessionmaker

        sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.engine.dialect.name == "postgresql":
            from scheduler.storage.wakeup import install_sender

            install_sender(sessions)
        return sessions

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

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection for commands that only read, with :meth:`read_session`'s guarantees
        (no write lock taken or waited for; anything written is rolled back)."""
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            try:
                yield conn
            finally:
                conn.rollback()

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
        import time

        from alembic import command
        from sqlalchemy.exc import OperationalError

        cfg = self._alembic_config()
        deadline = time.monotonic() + self.busy_seconds
        while True:
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                return
            except OperationalError as exc:
                # SQLite: processes opening a new file at once can get "database is locked" switching
                # it to WAL, before any busy wait applies; the transaction rolled back, so try again.
                if self.engine.dialect.name != "sqlite" or "locked" not in str(exc) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def check_schema(self) -> None:
        """Refuse to run on a schema older or newer than this code's migrations (ConfigError
        naming what to do). Several processes share one database: one started from an older
        release must not write rows the newer schema does not expect, nor the other way round."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory(str(migrations_dir())).get_heads())
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        if current == heads:
            return
        where = self.engine.url.render_as_string(hide_password=True)
        if not current:
            raise ConfigError(f"the database {where} has no tables yet: run `promo db upgrade`")
        known = {rev.revision for rev in ScriptDirectory(str(migrations_dir())).walk_revisions()}
        if current <= known:
            raise ConfigError(f"the database {where} is at revision {', '.join(sorted(current))}, older than this "
                              f"promo's {', '.join(sorted(heads))}: run `promo db upgrade`")
        raise ConfigError(f"the database {where} is at revision {', '.join(sorted(current))}, which this promo "
                          f"does not know (it ends at {', '.join(sorted(heads))}): a newer promo upgraded it; "
                          "run that version, or upgrade this one")

    def is_current(self) -> bool:
        """True when the schema exists (migrations applied)."""
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return inspect(conn).has_table("posts")

    def dispose(self) -> None:
        self.engine.dispose()
