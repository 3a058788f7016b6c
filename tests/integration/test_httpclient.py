"""The dispatcher's HTTP engines keep the distinction the dispatcher relies on.

Against the fake platform on 127.0.0.1, with both PROMO_HTTP_ENGINE values: an answer
comes back whole; a refused connection is a connect error (nothing was sent); a request
the platform received but never answered, or a connection reset after sending, is a
read-side error (the outcome is unknown) — and through an adapter those become
Transient and UnknownOutcome.
"""

from __future__ import annotations

import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from scheduler import errors
from scheduler.httpclient import ENGINES, make_clients
from scheduler.platforms.base import ChannelContext, ReadyPost
from scheduler.platforms.webhook import WebhookAdapter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


async def client(engine: str, timeout: float = 1.0) -> httpx.AsyncClient:
    return make_clients(1, 2, timeout, engine=engine)[0]


async def test_an_answer_comes_back_whole(engine, fake_platform):
    c = await client(engine)
    try:
        r = await c.post(fake_platform.url("ok"), json={"text": "Halo"}, headers={"Idempotency-Key": "k1"})
    finally:
        await c.aclose()
    assert r.status_code == 200 and r.json()["id"]
    req = fake_platform.requests_for("ok")[0]
    assert req.key == "k1"


async def test_gzip_answers_are_decoded_once(engine):
    body = gzip.compress(b'{"id": "42"}')

    class Gz(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    c = await client(engine)
    try:
        r = await c.post(f"http://127.0.0.1:{server.server_address[1]}/", content=b"x")
        assert r.json() == {"id": "42"}
    finally:
        await c.aclose()
        server.shutdown()
        server.server_close()


async def test_refused_connection_is_a_connect_error(engine):
    c = await client(engine)
    try:
        with pytest.raises(httpx.ConnectError):
            await c.post(f"http://127.0.0.1:{free_port()}/x", content=b"x")
    finally:
        await c.aclose()


async def test_unanswered_and_reset_requests_are_read_side_errors(engine, fake_platform):
    fake_platform.script("held", "timeout")
    fake_platform.script("reset", "reset")
    c = await client(engine, timeout=0.5)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(fake_platform.url("held"), content=b"{}")
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await c.post(fake_platform.url("reset"), content=b"{}")
    finally:
        await c.aclose()
    assert len(fake_platform.requests_for("held")) == 1  # it was received: the outcome is unknown


async def test_through_an_adapter_they_become_transient_and_unknown_outcome(engine, fake_platform):
    fake_platform.script("hook", "timeout")
    c = await client(engine, timeout=0.5)
    post = ReadyPost(post_id=1, idempotency_key="abc", text="Halo")
    try:
        down = WebhookAdapter(ChannelContext("d", {"URL": f"http://127.0.0.1:{free_port()}/hook"}), c)
        with pytest.raises(errors.Transient):
            await down.publish(post)
        held = WebhookAdapter(ChannelContext("h", {"URL": fake_platform.url("hook")}), c)
        with pytest.raises(errors.UnknownOutcome):
            await held.publish(post)
    finally:
        await c.aclose()
