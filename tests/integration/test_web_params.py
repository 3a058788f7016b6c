"""Every dashboard route and parameter, fed anything: a 4xx naming the parameter, never a 5xx.

The web app runs for real (uvicorn on 127.0.0.1, its own loop in a thread) over a database
with three posts, the client logged in. The routes and their parameters are read from the app's
own route table (``scheduler.web.ROUTES``), so a route added later is fuzzed too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import web
from scheduler.config import load_settings
from scheduler.models import HistoryEntry, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.webapp import Served, add_user, log_in

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def serve(tmp: Path, **extra: str) -> Iterator[httpx.Client]:
    config = load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
                            "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
                            **{f"PROMO_{k}": v for k, v in extra.items()}})
    db = Database(config.database_url)
    db.upgrade()
    with db.session() as session:
        outbox = channel_store.sync_configured(session, config)["outbox"]
        for n in (1, 2, 3):
            post = post_store.create_post(session, channel=outbox, kind="free_text", text=f"Promo nomor {n}",
                                          status=PostStatus.PUBLISHED, scheduled_at=dt.datetime.now(dt.UTC),
                                          actor="test")
            session.add(HistoryEntry(post_id=post.id, channel_id=outbox.id, action="attempt",
                                     to_status="published", outcome="published"))
    add_user(db, "rina", "viewer")
    served = Served(config, db)
    try:
        with httpx.Client(base_url=served.url, trust_env=False, timeout=10) as c:
            log_in(c, "rina")
            yield c
    finally:
        served.stop()
        db.dispose()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from serve(tmp_path_factory.mktemp("webparams"))


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The same web app, the client not logged in."""
    for c in serve(tmp_path_factory.mktemp("weblocked")):
        c.cookies.clear()
        yield c


def assert_answered(response: httpx.Response) -> None:
    """A 2xx or a 4xx that says what was wrong; every answer with the security headers."""
    assert response.status_code < 500, (response.request.url, response.status_code, response.text[:500])
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    if response.status_code >= 400 and response.request.url.path.startswith("/api/v1/"):
        assert response.json()["error"]


@pytest.mark.parametrize(("url", "status", "message"), [
    # Dates out of range used to raise OverflowError (500).
    ("/api/v1/history?since=0001-01-01", 400, "since '0001-01-01': out of range"),
    ("/api/v1/history?until=9999-12-31", 400, "until '9999-12-31': out of range"),
    ("/history?since=0001-01-01%2000:00", 400, "since &#39;0001-01-01 00:00&#39;: out of range"),
    # An id beyond SQLite's integers (OverflowError, 500), digits int() reads but the router should not.
    ("/posts/99999999999999999999999", 404, "no post with id 99999999999999999999999"),
    ("/api/v1/posts/99999999999999999999999", 404, "no post with id 99999999999999999999999"),
    ("/posts/%C2%B2", 400, "post id &#39;²&#39;: not a number"),
    ("/api/v1/posts/%D9%A3", 400, "post id '٣': not a number"),  # used to answer post 3
    ("/api/v1/posts/0", 404, "no post with id 0"),
    # Every other parameter through the same layer.
    ("/api/v1/history?all=maybe", 400, "all 'maybe': write 1 or 0"),
    ("/api/v1/history?format=xml", 400, "format 'xml': one of json, csv"),
    ("/api/v1/posts?status=terbit", 400, "status 'terbit': not a post state"),
    ("/api/v1/posts?channel=outbox%00", 400, "channel 'outbox\\x00': contains a control character"),
    ("/api/v1/history?channel=" + "k" * 300, 400, "channel 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…': longer than 200"),
    ("/api/v1/posts?status=failed&status=published", 400, "status: given 2 times; give it once"),
])
def test_out_of_range_and_odd_parameters_are_named(client: httpx.Client, url: str, status: int,
                                                   message: str) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert message in (response.json()["error"] if url.startswith("/api/v1/") else response.text)
    assert_answered(response)


def test_good_parameters_still_work(client: httpx.Client) -> None:
    assert client.get("/api/v1/posts/3").json()["text"] == "Promo nomor 3"
    assert client.get("/api/v1/posts/003").json()["id"] == 3
    assert len(client.get("/api/v1/posts", params={"status": "published", "channel": " OUTBOX "}).json()) == 3
    wide = {"since": "2020-01-01", "until": "9999-12-30", "channel": "", "status": ""}
    assert len(client.get("/api/v1/history", params=wide).json()) == 3  # the attempts
    assert len(client.get("/api/v1/history", params={**wide, "all": "on"}).json()) == 6  # and the status changes
    assert client.get("/api/v1/history", params={"format": "CSV"}).text.count("\n") == 4
    assert client.get("/history", params={"all": "1", "status": "published,failed"}).status_code == 200


#: Inputs known to have broken a route, mixed into the random ones.
ODD = [b"0001-01-01", b"9999-12-31", b"9999-12-31 23:59", b"0001-01-01T00:00+14:00", "²".encode(), "٣".encode(),
       b"99999999999999999999999", b"9223372036854775808", b"-1", b"0", b"1e5", b" 3", b"\x00", b"%", b"\xed\xa0\x80",
       b"\xff\xfe", b"2027-02-30", b"2027-01-01 25:00", b"published,", b",", b"csv", b"on", "𝟗".encode()]
values = st.one_of(st.sampled_from(ODD), st.text(max_size=40).map(str.encode), st.binary(max_size=24))


@st.composite
def requests(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(web.ROUTES))
    fields = dataclasses.fields(route.params)
    path = route.path
    query_names = [f.name for f in fields if not f.metadata["path"]] + ["x"]
    for f in fields:
        if f.metadata["path"]:
            path = path.replace("{" + f.name + "}", quote_from_bytes(draw(values.filter(bool)), safe=""))
    pairs = draw(st.lists(st.tuples(st.sampled_from(query_names), values), max_size=4))
    query = "&".join(f"{quote(k)}={quote_from_bytes(v, safe='')}" for k, v in pairs)
    return f"{path}?{query}" if query else path


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=requests())
def test_no_input_to_any_route_gets_a_server_error(client: httpx.Client, url: str) -> None:
    assert_answered(client.get(url))


#: What one HTTP header value can carry (no control characters but tab; nothing at either end).
header_bytes = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127).strip())


@settings(max_examples=200, deadline=None, database=None)
@given(header=st.one_of(header_bytes.map(lambda b: b"Basic " + b), header_bytes,
                        st.text(max_size=30).map(lambda t: b"Basic " + t.encode("utf-8"))))
def test_no_authorization_header_gets_a_server_error(locked: httpx.Client, header: bytes) -> None:
    header = bytes(c for c in header if c == 9 or 32 <= c != 127).strip()
    response = locked.get("/api/v1/status", headers={"Authorization": header} if header else {})
    assert response.status_code in (401, 429), (header, response.status_code, response.text[:300])
    assert_answered(response)


form_text = st.one_of(st.text(max_size=60), st.sampled_from(["", "rina", "//evil.example", "/posts?x=1", "\x00",
                                                            "a" * 2000, "https://evil.example/"]))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=form_text, password=form_text, target=form_text, cookie=header_bytes)
def test_no_login_form_or_cookie_gets_a_server_error(locked: httpx.Client, name: str, password: str, target: str,
                                                     cookie: bytes) -> None:
    response = locked.post("/login", data={"name": name, "password": password, "next": target},
                           headers={"Cookie": b"promo_session=" + cookie})
    assert response.status_code in (303, 401, 429), (response.status_code, response.text[:300])
    assert_answered(response)
    if response.status_code == 303:  # a cookie that happened to be valid is impossible; never off the site
        assert response.headers["location"].startswith("/") and not response.headers["location"].startswith("//")
    locked.cookies.clear()
