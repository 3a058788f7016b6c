"""Shared fixtures. Engineers append their own; keep each fixture's docstring saying what it gives."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scheduler import redact
from scheduler.storage.db import Database
from tests.fakeplatform import FakePlatform

REPO = Path(__file__).resolve().parents[1]
#: The PostgreSQL server the machine runs (trust auth, database ``test``); CI requires it.
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEMPLATES = REPO / "templates"


@pytest.fixture(autouse=True)
def secret_registry() -> Iterator[None]:
    """Leave the process-wide secret registry as each test found it (a test registering 3,000
    secrets must not slow down or change the redaction every later test sees)."""
    before = redact.registered_secrets()
    yield
    redact.forget_secrets()
    for secret in before:
        redact.register_secret(secret)


@pytest.fixture
def fake_platform() -> Iterator[FakePlatform]:
    """A started :class:`tests.fakeplatform.FakePlatform` on a free 127.0.0.1 port (seed 7)."""
    with FakePlatform(seed=7) as fake:
        yield fake


@pytest.fixture
def promo_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Build a PROMO_* environment dict for ``load_settings`` or a ``promo`` subprocess.

    ``promo_env(channels={"a": {"PLATFORM": "webhook", "URL": …}}, RETRY_BASE_SECONDS="0.1")``
    gives a SQLite database in ``tmp_path``, the repository's templates and those channels.
    """

    def build(channels: Mapping[str, Mapping[str, str]] | None = None, **settings: str) -> dict[str, str]:
        env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES)}
        channels = channels or {"outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl")}}
        env["PROMO_CHANNELS"] = ",".join(channels)
        for name, options in channels.items():
            for key, value in options.items():
                env[f"PROMO_CHANNEL_{name.upper()}_{key}"] = value
        env.update({f"PROMO_{k}": v for k, v in settings.items()})
        return env

    return build


async def _wait_until(condition: Callable[[], bool], timeout: float, *,
                     tick: Callable[[], Awaitable[object]] | None = None, poll: float = 0.02) -> None:
    """Wait (in the event loop) until ``condition()`` holds, calling ``tick`` between checks.

    ``tick`` is the dispatcher's poll (what the service's dispatch job does every
    PROMO_POLL_SECONDS); the wait itself ends on the condition, or fails at the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        if tick is not None:
            await tick()
        await asyncio.sleep(poll)


@pytest.fixture
def utc_now() -> dt.datetime:
    """The current time, aware UTC, truncated to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(condition, timeout, tick=dispatcher.tick)``: poll a condition with a deadline."""
    return _wait_until


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A database URL whose connections use a fresh, empty schema of the local PostgreSQL
    server (dropped afterwards); the URL alone carries it, so `promo` subprocesses use it too.
    Skips where no server answers, unless TEST_REQUIRE_POSTGRES is set (CI)."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # no server, no driver
        if os.environ.get("TEST_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not available at {PG_URL}: {exc}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL, once SQLite (a file in ``tmp_path``) and once PostgreSQL (a
    fresh schema; skipped, saying why, where no server answers, a failure under
    TEST_REQUIRE_POSTGRES=1). Storage and dispatcher tests take it to run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/promo.db"
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def any_db(db_url: str) -> Iterator[Database]:
    """A migrated :class:`Database` on SQLite and on PostgreSQL (see ``db_url``)."""
    db = Database(db_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def pg_db() -> Iterator[Database]:
    """A migrated :class:`Database` in a fresh schema of the local PostgreSQL server, dropped after
    the test. Skips, saying why, where no server answers; CI sets TEST_REQUIRE_POSTGRES=1 to
    make that a failure instead."""
    with pg_schema_url() as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PROMO_DATABASE_URL for a fresh, migrated schema of the local PostgreSQL server (any process
    given the URL works in that schema); dropped after the test. Skips, or fails under
    TEST_REQUIRE_POSTGRES=1, without a server."""
    with pg_schema_url() as url:
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
