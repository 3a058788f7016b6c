"""`promo channels check|add|list` against a real HTTP server on 127.0.0.1 (a small Mastodon).

check reports OK / bad token / unreachable; a server's character limit learned by check is
used when composing; a channel added with `channels add` keeps its secrets encrypted.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import cli_in, run_cli, send_json

ROOT = Path(__file__).resolve().parents[2]
GOOD = "SECRET-good-mastodon-token"


class Masto(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/api/v2/instance":
            self._json(200, {"domain": "127.0.0.1", "configuration": {"statuses": {"max_characters": 120}}})
        elif self.path == "/api/v1/accounts/verify_credentials":
            if self.headers.get("Authorization") == f"Bearer {GOOD}":
                self._json(200, {"id": "1", "acct": "humas_kota", "username": "humas_kota"})
            else:
                self._json(401, {"error": "The access token is invalid"})
        else:
            self._json(404, {"error": "Record not found"})

    def _json(self, status: int, body: dict) -> None:
        send_json(self, status, body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def masto():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Masto)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path, monkeypatch, masto):
    values = {
        "PROMO_ENV_FILE": str(tmp_path / "none.env"),
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
        "PROMO_SECRET_KEY": "a long passphrase for the channel secrets",
        "PROMO_CHANNELS": "good,bad,down",
        "PROMO_CHANNEL_GOOD_PLATFORM": "mastodon", "PROMO_CHANNEL_GOOD_BASE_URL": masto,
        "PROMO_CHANNEL_GOOD_ACCESS_TOKEN": GOOD,
        "PROMO_CHANNEL_BAD_PLATFORM": "mastodon", "PROMO_CHANNEL_BAD_BASE_URL": masto,
        "PROMO_CHANNEL_BAD_ACCESS_TOKEN": "SECRET-revoked-token",
        "PROMO_CHANNEL_DOWN_PLATFORM": "mastodon", "PROMO_CHANNEL_DOWN_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "PROMO_CHANNEL_DOWN_ACCESS_TOKEN": "SECRET-unused-token",
    }
    cli_in(monkeypatch, tmp_path, values)
    return values


def test_check_reports_ok_bad_token_and_unreachable(env, capsys):
    code, out = run_cli(capsys, "channels", "check")
    assert code == 1  # something failed
    lines = {line.split(":")[0]: line for line in out.splitlines() if ":" in line}
    assert "good: OK" in lines["good"] and "@humas_kota" in lines["good"]
    assert "bad: bad token" in lines["bad"]
    assert "down: unreachable" in lines["down"]
    assert "SECRET-" not in out

    code, out = run_cli(capsys, "channels", "check", "good")
    assert code == 0 and "120 characters" in out


def test_server_limit_learned_by_check_is_used_when_composing(env, capsys, tmp_path):
    long_text = "Pameran UMKM Balikpapan di Atrium e-Walk. " * 5  # 215 characters
    code, out = run_cli(capsys, "compose", "--text", long_text, "--channel", "good")
    assert code == 0 and "/500" in out
    assert run_cli(capsys, "channels", "check", "good")[0] == 0
    code, out = run_cli(capsys, "compose", "--text", long_text, "--channel", "good")
    assert code == 1 and "89 over the limit of 120 characters" in out  # free text is refused, not cut
    code, out = run_cli(capsys, "compose", "--text", long_text, "--channel", "good", "--shorten")
    assert code == 0, out
    assert "/120" in out and "shortened to fit" in out


def test_channels_add_stores_secrets_encrypted_and_lists_the_channel(env, capsys, tmp_path, masto):
    code, out = run_cli(capsys, "channels", "add", "kecamatan", "--platform", "mastodon", "--set", f"BASE_URL={masto}",
                    "--set", "ACCESS_TOKEN=SECRET-stored-in-db", "--set", "SLOTS=09:00,19:00")
    assert code == 0, out
    code, out = run_cli(capsys, "channels", "list", "--format", "json")
    listed = {c["name"]: c for c in json.loads(out)}
    assert listed["kecamatan"]["source"] == "db" and listed["kecamatan"]["platform"] == "mastodon"
    assert "SECRET-" not in out
    for f in tmp_path.glob("promo.db*"):
        assert b"SECRET-stored-in-db" not in f.read_bytes()
    # The stored channel works like a configured one: it can be checked and posted to.
    code, out = run_cli(capsys, "channels", "check", "kecamatan")
    assert code == 1 and "bad token" in out  # the fake only accepts GOOD
    code, out = run_cli(capsys, "post", "new", "--text", "Halo dari kecamatan", "--channel", "kecamatan", "--queue")
    assert code == 0, out


def test_channels_add_refuses_bad_input_naming_the_problem(env, capsys):
    code, out = run_cli(capsys, "channels", "add", "x1", "--platform", "mastodon", "--set", "ACCESS_TOKEN=SECRET-a")
    assert code == 1 and "BASE_URL" in out and "SECRET-" not in out
    code, out = run_cli(capsys, "channels", "add", "x2", "--platform", "myspace")
    assert code == 1 and "unknown platform 'myspace'" in out
    code, out = run_cli(capsys, "channels", "add", "x3", "--platform", "mastodon", "--set", "NOPE")
    assert code == 2 and "KEY=VALUE" in out


FB_TOKEN = "EAAB-SECRET-page-token"


class Graph(BaseHTTPRequestHandler):
    """A Facebook Page on a Graph API that answers only with the token in a header."""

    request_lines: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).request_lines.append(self.requestline)
        if not self.path.startswith("/v25.0/104857600123"):
            self._json(400, {"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}})
        elif self.headers.get("Authorization") != f"Bearer {FB_TOKEN}":
            self._json(400, {"error": {"message": "An active access token must be used", "type": "OAuthException",
                                       "code": 2500}})
        else:
            self._json(200, {"id": "104857600123", "name": "Diskominfo Kota"})

    _json = Masto._json
    log_message = Masto.log_message


def test_check_uses_promo_graph_api_version_and_keeps_the_token_out_of_urls(env, capsys, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Graph)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for key, value in {"PROMO_CHANNELS": "good,bad,down,fb", "PROMO_GRAPH_API_VERSION": "v25.0",
                           "PROMO_CHANNEL_FB_PLATFORM": "facebook", "PROMO_CHANNEL_FB_PAGE_ID": "104857600123",
                           "PROMO_CHANNEL_FB_ACCESS_TOKEN": FB_TOKEN,
                           "PROMO_CHANNEL_FB_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}"}.items():
            monkeypatch.setenv(key, value)
        code, out = run_cli(capsys, "channels", "check", "fb")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, out
    assert "fb: OK — Facebook Page Diskominfo Kota (104857600123)" in out
    assert Graph.request_lines and all(FB_TOKEN not in line and "access_token" not in line
                                       for line in Graph.request_lines)


def test_a_successful_check_resumes_reading_counters_a_bad_one_does_not(env, capsys):
    from scheduler.config import load_settings
    from scheduler.models import MetricChannel, utcnow
    from scheduler.storage import channels as channel_store
    from scheduler.storage import metrics as metric_store
    from scheduler.storage.db import Database

    assert run_cli(capsys, "db", "upgrade")[0] == 0
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as session:
        rows = channel_store.sync_configured(session, settings)
        ids = {name: rows[name].id for name in ("good", "bad")}
        for channel_id in ids.values():
            metric_store.pause(session, channel_id, "mastodon status lookup answered HTTP 401", utcnow())
    run_cli(capsys, "channels", "check")
    with db.session() as session:
        assert session.get(MetricChannel, ids["good"]).paused_at is None
        assert session.get(MetricChannel, ids["bad"]).paused_at is not None
