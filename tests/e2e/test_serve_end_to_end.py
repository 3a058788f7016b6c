"""The real `promo serve` process publishing to a real HTTP server on 127.0.0.1 and an outbox file.

Checks what a comms officer would: each queued post arrives once, at its time, with the
right text and a valid signature, and `promo history` shows it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRET-e2e-webhook-signing-key"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.received.append({
                "at": dt.datetime.now(dt.UTC), "path": self.path, "body": json.loads(body),
                "raw": body, "signature": self.headers.get("X-Promo-Signature"),
                "timestamp": self.headers.get("X-Promo-Timestamp"),
                "key": self.headers.get("Idempotency-Key"),
            })
            n = len(self.server.received)
        data = json.dumps({"id": f"r{n}", "url": f"http://127.0.0.1/p/{n}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def promo(env: dict, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "scheduler.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"promo {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.slow
def test_serve_publishes_each_post_once_at_its_time(tmp_path, receiver):
    port = receiver.server_address[1]
    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
        "PROMO_ENV_FILE": str(tmp_path / "none.env"),
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
        "PROMO_CHANNELS": "outbox,hook",
        "PROMO_CHANNEL_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "PROMO_CHANNEL_HOOK_PLATFORM": "webhook",
        "PROMO_CHANNEL_HOOK_URL": f"http://127.0.0.1:{port}/hook",
        "PROMO_CHANNEL_HOOK_SECRET": SECRET,
        "PROMO_HEALTH_PORT": "0",
        "PROMO_POLL_SECONDS": "1",
    }
    promo(env, tmp_path, "db", "upgrade")
    (tmp_path / "umkm.csv").write_text(
        "id;name;owner;category;city;district;phone;instagram;website;curated\n"
        "amplang;Amplang Kakak;Siti;kuliner;Balikpapan;Balikpapan Selatan;0812;amplangkakak;;ya\n",
        encoding="utf-8-sig")
    (tmp_path / "products.csv").write_text(
        "id,umkm_id,name,description,price,image,url,tags,curation\n"
        "tenggiri,amplang,Amplang Tenggiri,Renyah dan gurih.,25000,,https://amplang.example/t,oleholeh;kuliner,approved\n",
        encoding="utf-8")
    promo(env, tmp_path, "import", "umkm", "umkm.csv")
    promo(env, tmp_path, "import", "products", "products.csv")

    # The service runs first (as in production); posts queued while it runs must go out at their time.
    server = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "last tick" in promo(env, tmp_path, "status", check=False).stdout, 30, "the service to tick")
        tz = dt.timezone(dt.timedelta(hours=8))
        first = (dt.datetime.now(tz) + dt.timedelta(seconds=5)).replace(microsecond=0)
        second = first + dt.timedelta(seconds=2)
        out = promo(env, tmp_path, "post", "new", "--product", "tenggiri", "--channel", "outbox,hook",
                    "--at", first.strftime("%Y-%m-%d %H:%M:%S"), "--format", "json")
        created = json.loads(out.stdout)
        assert [p["channel"] for p in created] == ["outbox", "hook"]
        promo(env, tmp_path, "post", "new", "--text", "Sampai jumpa di Nusakraf! #UMKM", "--channel", "hook",
              "--at", second.isoformat())
        wait_for(lambda: len(receiver.received) >= 2, 30, "two webhook posts")
        wait_for(lambda: (tmp_path / "outbox.jsonl").exists(), 10, "the outbox file")
        wait_for(lambda: "published 3" in promo(env, tmp_path, "status").stdout, 10, "three published posts")
        # A few more dispatch ticks (the service writes its heartbeat each tick): nothing may arrive twice.
        beat = promo(env, tmp_path, "status").stdout
        wait_for(lambda: promo(env, tmp_path, "status").stdout != beat, 10, "another dispatch tick")
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "stopped" in output

    assert len(receiver.received) == 2, receiver.received
    by_text = {r["body"]["text"]: r for r in receiver.received}
    product_post = next(r for t, r in by_text.items() if "Amplang Tenggiri" in t)
    free_post = by_text["Sampai jumpa di Nusakraf! #UMKM"]
    # At their time: not before, and within a second or two after.
    assert first.astimezone(dt.UTC) <= product_post["at"] < first.astimezone(dt.UTC) + dt.timedelta(seconds=2)
    assert second.astimezone(dt.UTC) <= free_post["at"] < second.astimezone(dt.UTC) + dt.timedelta(seconds=2)
    # The right text, composed from the template in Indonesian with rupiah.
    assert "Rp 25.000" in product_post["body"]["text"]
    assert "https://amplang.example/t" in product_post["body"]["text"]
    assert "#oleholeh #kuliner" in product_post["body"]["text"]
    # Signed with HMAC-SHA256 over "<timestamp>.<raw body>", the timestamp being when it was sent.
    sent = int(product_post["timestamp"])
    assert abs(sent - product_post["at"].timestamp()) < 5
    expected = "sha256=" + hmac.new(SECRET.encode(), f"{sent}.".encode() + product_post["raw"],
                                    hashlib.sha256).hexdigest()
    assert product_post["signature"] == expected

    lines = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert "Amplang Tenggiri" in json.loads(lines[0])["text"]

    history = json.loads(promo(env, tmp_path, "history", "--format", "json").stdout)
    published = [h for h in history if h["outcome"] == "published"]
    assert sorted(h["channel"] for h in published) == ["hook", "hook", "outbox"]
    assert {h["remote_url"] for h in published if h["channel"] == "hook"} == {"http://127.0.0.1/p/1",
                                                                               "http://127.0.0.1/p/2"}
    for h in history:
        assert SECRET not in json.dumps(h)
    posts = json.loads(promo(env, tmp_path, "post", "list", "--format", "json").stdout)
    assert {p["status"] for p in posts} == {"published"}
    assert all(p["attempts"] == 1 for p in posts)
