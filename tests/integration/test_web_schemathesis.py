"""Every operation of the web app's OpenAPI description, exercised by schemathesis against the
real app (uvicorn on 127.0.0.1, an admin's API token): no answer is a server error, every answer's
status, content type and body conform to what the description declares for it, and what it
declares says something: each operation's success answer has a schema with named fields (not an
empty or free-form object), and each error answer ``{"error": …}``.

The schema is the one the running server serves at /api/v1/openapi.json (it needs the token).
Examples per operation are bounded so the whole run stays within a minute or two on a loaded
2-core machine; the database is a throwaway SQLite file with a channel and a few posts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.models import Channel, Heartbeat, Highlight, Product
from scheduler.storage import accounts
from scheduler.storage.db import Database
from tests.webapp import Served, add_user

REPO = Path(__file__).resolve().parents[2]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
UMKM_CSV = "id,name,city\nu1,Kopi Kita,Bandung\n"
PRODUCTS_CSV = "id,umkm_id,name,price,description\np1,u1,Kopi Susu,18000,Kopi susu gula aren\n"

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str, Database]]:
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
        yield served, token, db
    finally:
        served.stop()
        db.dispose()


def test_every_operation_answers_without_a_server_error_and_as_described(
        served_app: tuple[Served, str, Database]) -> None:
    served, token, served_db = served_app
    headers = {"Authorization": f"Bearer {token}"}
    # A few posts (drafts and queued ones), so the operations on /api/v1/posts/{id} meet real rows.
    for i, when in enumerate(["draft", "draft", "queue", "queue", "draft"]):
        made = httpx.post(f"{served.url}/api/v1/posts", headers=headers, trust_env=False, timeout=30,
                          json={"channels": ["outbox"], "text": f"Promo UMKM #{i}", "when": when})
        assert made.status_code == 201, made.text
    # Records of two kinds, so the records operations answer rows (not only empty pages).
    for kind, content in (("umkm", UMKM_CSV), ("products", PRODUCTS_CSV)):
        imported = httpx.post(f"{served.url}/api/v1/records/{kind}/import", headers=headers, trust_env=False,
                              timeout=30, files={"file": (f"{kind}.csv", content.encode(), "text/csv")})
        assert imported.status_code == 200, imported.text
    # A service process's tick and highlight days (one with a product and its post, one skipped), so
    # /api/v1/status and /api/v1/highlights answer rows too.
    with served_db.session() as session:
        channel = session.scalars(select(Channel).where(Channel.name == "outbox")).one()
        product = session.scalars(select(Product)).first()
        session.add(Heartbeat(worker="host-1:4242"))
        session.add(Highlight(day=dt.date(2027, 1, 4), channel_id=channel.id, status="created", post_id=1,
                              product_id=product.id if product else None, umkm_id=product.umkm_id if product else None))
        session.add(Highlight(day=dt.date(2027, 1, 5), channel_id=channel.id, status="skipped", reason="service down"))
    status = httpx.get(f"{served.url}/api/v1/status", headers=headers, trust_env=False, timeout=30).json()
    days = httpx.get(f"{served.url}/api/v1/highlights", headers=headers, trust_env=False, timeout=30).json()
    assert len(status["workers"]) == 1 and len(days) == 2 and days[0]["product"] == "p1"
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


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _named_fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Where ``schema`` says nothing: an object without named fields (or open to any), an empty schema."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        return [p for option in schema["anyOf"] for p in _named_fields(spec, option)]
    if schema.get("type") == "array":
        return _named_fields(spec, schema.get("items", {}))
    if schema.get("type") == "string":
        return []
    if not schema.get("properties") or schema.get("additionalProperties") is True:
        return [f"free-form {schema.get('title') or schema}"]
    return []


def test_every_api_operation_declares_its_answers(served_app: tuple[Served, str, Database]) -> None:
    """Conformance says something only where the description does: each /api/v1 operation's success
    answer is JSON with named fields (a list of rows, a page of them, an object), and its errors
    (400, 401, 403 everywhere; 404 and 409 where the thing or its state can be wrong) are
    ``{"error": …}``, never FastAPI's 422 (the app answers 400)."""
    served, token, _db = served_app
    spec = httpx.get(f"{served.url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"},
                     trust_env=False, timeout=30).json()
    vague: dict[str, list[str]] = {}
    operations = 0
    for path, methods in spec["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, operation in methods.items():
            operations += 1
            label = f"{method.upper()} {path}"
            answers = operation["responses"]
            success = [code for code in answers if code in ("200", "201")]
            assert success, f"{label}: no success answer declared"
            content = answers[success[0]].get("content", {})
            assert "application/json" in content, f"{label}: the success answer is not declared as JSON"
            problems = _named_fields(spec, content["application/json"].get("schema", {}))
            if problems:
                vague[label] = problems
            assert "422" not in answers, f"{label}: declares 422, but the app answers 400"
            for code in ("400", "401", "403"):
                assert code in answers, f"{label}: {code} not declared"
                error = _resolve(spec, answers[code]["content"]["application/json"]["schema"])
                options = [_resolve(spec, o) for o in error.get("anyOf", [error])]
                assert all("error" in o["properties"] and "error" in o["required"] for o in options), (label, code)
    assert operations > 20
    assert vague == {}, vague
    ids = [p for p in spec["paths"] if "{id}" in p and p.startswith("/api/v1/posts/")]
    assert all("404" in op["responses"] for p in ids for op in spec["paths"][p].values())


def test_conformance_catches_an_answer_of_the_wrong_shape(served_app: tuple[Served, str, Database]) -> None:
    """The checks the operations run under fail on an answer that is not what is declared: a post
    whose id is text, a post missing a field, a status that is not a declared one."""
    served, token, _db = served_app
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json", headers=headers)
    operation = schema["/api/v1/posts/{id}"]["GET"]
    made = httpx.post(f"{served.url}/api/v1/posts", headers=headers, trust_env=False, timeout=30,
                      json={"channels": ["outbox"], "text": "Promo UMKM", "when": "draft"})
    post_id = made.json()["posts"][0]["id"]
    case = operation.Case(path_parameters={"id": post_id})
    real = httpx.get(f"{served.url}/api/v1/posts/{post_id}", headers=headers, trust_env=False, timeout=30)
    assert real.status_code == 200
    case.validate_response(real, checks=CHECKS)  # the real answer conforms

    def answered(status: int, body: Any) -> httpx.Response:
        response = httpx.Response(status, json=body, request=real.request)
        response.elapsed = real.elapsed
        return response

    wrong = [answered(200, {**real.json(), "id": "1"}),
             answered(200, {k: v for k, v in real.json().items() if k != "history"}),
             answered(200, {**real.json(), "history": [{"id": 1}]}),
             answered(200, {"error": "not a post"}),
             answered(418, {"error": "a teapot"}),
             answered(404, {"detail": "FastAPI's own shape"})]
    for response in wrong:
        with pytest.raises(FailureGroup):
            case.validate_response(response, checks=CHECKS)
