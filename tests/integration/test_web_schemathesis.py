"""Every operation of the web app's OpenAPI description, exercised by schemathesis against the
real app (uvicorn on 127.0.0.1, an admin's API token): no answer is a server error, and every
answer conforms to the response the description declares for it.

The schema is the one the running server serves at /api/v1/openapi.json (it needs the token).
Examples per operation are bounded so the whole run stays within a minute or two on a loaded
2-core machine; the database is a throwaway SQLite file with a channel and a few posts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from scheduler.config import load_settings
from scheduler.storage import accounts
from scheduler.storage.db import Database
from tests.webapp import Served, add_user

REPO = Path(__file__).resolve().parents[2]
CHECKS = [not_a_server_error, response_schema_conformance]

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db", "PROMO_TEMPLATES_DIR": str(REPO / "templates"),
           "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PLATFORM": "outbox",
           "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
           "PROMO_CHANNEL_OUTBOX_SLOTS": "09:00,19:00", "PROMO_WEB_SESSION_IDLE_MINUTES": "30"}
    config = load_settings(env)
    db = Database(config.database_url)
    db.upgrade()
    add_user(db, "ana", "admin")
    with db.session() as session:
        token = accounts.create_token(session, "ana", "schemathesis")[1]
    served = Served(config, db)
    try:
        yield served, token
    finally:
        served.stop()
        db.dispose()


def test_every_operation_answers_without_a_server_error_and_as_described(served_app: tuple[Served, str]) -> None:
    served, token = served_app
    headers = {"Authorization": f"Bearer {token}"}
    # A few posts (drafts and queued ones), so the operations on /api/v1/posts/{id} meet real rows.
    for i, when in enumerate(["draft", "draft", "queue", "queue", "draft"]):
        made = httpx.post(f"{served.url}/api/v1/posts", headers=headers, trust_env=False, timeout=30,
                          json={"channels": ["outbox"], "text": f"Promo UMKM #{i}", "when": when})
        assert made.status_code == 201, made.text
    schema = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json", headers=headers)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the description cannot express fails here
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def exercise(case: Any) -> None:
            case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # every operation is tried; the failures are listed together
            failures[operation.label] = str(exc)[:2000]
    assert operations > 20  # the description really was read
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
