"""Bluesky adapter against httpx.MockTransport, with the XRPC shapes of the reference PDS.

Each test scripts the answers per NSID and asserts the exact requests the adapter sent.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable

import httpx
import pytest
import time_machine
from PIL import Image

from scheduler import errors
from scheduler.platforms.atproto import TID_ALPHABET, TID_PATTERN, facets_for, tid_for
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.bluesky import BlueskyAdapter
from tests.helpers import image_bytes

NOW = dt.datetime(2026, 9, 1, 4, 0, 0, tzinfo=dt.UTC)
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
HANDLE = "umkmkota.bsky.social"
PASSWORD = "SECRET-abcd-efgh-ijkl"
BASE = "http://127.0.0.1:9"
CREATED = dt.datetime(2026, 8, 30, 1, 2, 3, 456789, tzinfo=dt.UTC)
KEY = "0c8e4a2e6bb54d0f9a4b1f0f2f5a7d11"
RKEY = tid_for(CREATED, KEY)
XRPC = "/xrpc/"

# Emoji and Indonesian text before the link, so byte offsets differ from str offsets.
TEXT = "🎉 Promo spesial Kue Lapis — cuma Rp 25.000! Pesan di https://umkm.example/kue #UMKM #Balikpapan"

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def jwt(kind: str, expires: dt.datetime) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'at+jwt', 'alg': 'HS256'})}.{part({'sub': DID, 'exp': int(expires.timestamp())})}.SECRET-{kind}"


ACCESS = jwt("access1", NOW + dt.timedelta(hours=2))
REFRESH = jwt("refresh1", NOW + dt.timedelta(days=90))
ACCESS2 = jwt("access2", NOW + dt.timedelta(hours=2))
REFRESH2 = jwt("refresh2", NOW + dt.timedelta(days=90))


def session_state(access: str = ACCESS, refresh: str = REFRESH) -> dict[str, str]:
    return {"accessJwt": access, "refreshJwt": refresh, "did": DID, "handle": HANDLE, "identifier": HANDLE}


def session_body(access: str = ACCESS2, refresh: str = REFRESH2) -> dict:
    return {"accessJwt": access, "refreshJwt": refresh, "handle": HANDLE, "did": DID, "active": True,
            "email": "umkm@example.com", "emailConfirmed": True}


def xerr(status: int, name: str, message: str, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": name, "message": message}, headers=headers)


def created(rkey: str = RKEY) -> httpx.Response:
    return httpx.Response(200, json={"uri": f"at://{DID}/app.bsky.feed.post/{rkey}",
                                     "cid": "bafyreic7rkmb3or5pwkztxphdrcvnp4ylbhrtrjghkij7tssyhmdawshje",
                                     "commit": {"cid": "bafyreiecy2", "rev": "3n3dkoeaxmk2m"},
                                     "validationStatus": "valid"})


def record(text: str = TEXT) -> httpx.Response:
    return httpx.Response(200, json={"uri": f"at://{DID}/app.bsky.feed.post/{RKEY}", "cid": "bafyreic7",
                                     "value": {"$type": "app.bsky.feed.post", "text": text,
                                               "createdAt": "2026-09-01T04:00:00.000Z"}})


BLOB = {"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
        "mimeType": "image/png", "size": 120}


class Script:
    """Answers per NSID, in order (the last one repeats); records every request."""

    def __init__(self, **answers: list[httpx.Response] | Callable[[httpx.Request], httpx.Response]):
        self.answers = {k.replace("_", "."): v for k, v in answers.items()}
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        assert request.url.host == "127.0.0.1" and request.url.path.startswith(XRPC)
        nsid = request.url.path.removeprefix(XRPC)
        answer = self.answers.get(nsid)
        if answer is None:
            raise AssertionError(f"unexpected call {request.method} {nsid}")
        if callable(answer):
            return answer(request)
        return answer.pop(0) if len(answer) > 1 else answer[0]

    def calls(self) -> list[str]:
        return [r.url.path.removeprefix(XRPC) for r in self.sent]

    def last(self, nsid: str) -> httpx.Request:
        return [r for r in self.sent if r.url.path == XRPC + nsid][-1]


def make(script: Script, state: dict[str, str] | None = None, **options: str) -> BlueskyAdapter:
    opts = {"HANDLE": HANDLE, "APP_PASSWORD": PASSWORD, "BASE_URL": BASE} | options
    ctx = ChannelContext(name="bsky_kota", options=opts, state=MemoryState(state))
    return BlueskyAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(script)))


POST_DEFAULTS = {"text": TEXT, "created_at": CREATED}


def png(path, width: int = 640, height: int = 480, *, noise: bool = False) -> Media:
    path.write_bytes(image_bytes("PNG", width, height, noise=noise))
    return Media.from_path(path, alt_text="Kue lapis legit di atas piring")


def body(request: httpx.Request) -> dict:
    return json.loads(request.content)


def no_secret(exc: BaseException) -> None:
    assert "SECRET" not in str(exc)


# --- pure helpers ----------------------------------------------------------------------


def test_tid_is_valid_stable_and_encodes_created_at_and_a_clock_id_from_the_key():
    assert TID_PATTERN.match(RKEY)
    assert tid_for(CREATED, KEY) == RKEY
    assert tid_for(CREATED, "another-key") != RKEY
    value = 0
    for ch in RKEY:
        value = value * 32 + TID_ALPHABET.index(ch)
    micros = value >> 10
    assert dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros) == CREATED
    # a naive created_at is taken as UTC
    assert tid_for(CREATED.replace(tzinfo=None), KEY) == RKEY


def test_facets_use_utf8_byte_offsets_after_emoji_and_indonesian_text():
    facets = facets_for(TEXT)
    raw = TEXT.encode("utf-8")
    link, umkm, kota = facets
    assert raw[link["index"]["byteStart"]:link["index"]["byteEnd"]] == b"https://umkm.example/kue"
    assert link["index"]["byteStart"] != TEXT.index("https://")  # the emoji and dash are multi-byte
    assert link["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://umkm.example/kue"}]
    assert raw[umkm["index"]["byteStart"]:umkm["index"]["byteEnd"]] == b"#UMKM"
    assert umkm["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "UMKM"}]
    assert kota["features"][0]["tag"] == "Balikpapan"


def test_facets_skip_url_fragments_and_numeric_tags_and_keep_non_ascii_tags():
    text = "Lihat https://umkm.example/menu#harga lalu #1 dan #KueBalikpapanEnak 🍰 #kopi_susu"
    tags = [f["features"][0].get("tag") for f in facets_for(text)]
    assert tags == [None, "KueBalikpapanEnak", "kopi_susu"]
    text = "Café ☕ #kopiEnak"
    (tag,) = facets_for(text)
    assert text.encode()[tag["index"]["byteStart"]:tag["index"]["byteEnd"]] == b"#kopiEnak"


# --- publishing ------------------------------------------------------------------------


async def test_text_post_with_link_card_sends_the_exact_create_record(post_factory):
    script = Script(com_atproto_repo_createRecord=[created()])
    result = await make(script, session_state()).publish(
        post_factory(link="https://umkm.example/kue", title="Kue Lapis", description="Kue lapis legit"))
    assert script.calls() == ["com.atproto.repo.createRecord"]
    request = script.sent[0]
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert request.headers["Content-Type"] == "application/json"
    sent = body(request)
    assert sent == {"repo": DID, "collection": "app.bsky.feed.post", "rkey": RKEY, "record": {
        "$type": "app.bsky.feed.post", "text": TEXT, "createdAt": "2026-09-01T04:00:00.000Z",
        "facets": facets_for(TEXT),
        "embed": {"$type": "app.bsky.embed.external", "external": {
            "uri": "https://umkm.example/kue", "title": "Kue Lapis", "description": "Kue lapis legit"}}}}
    link = sent["record"]["facets"][0]["index"]
    assert TEXT.encode()[link["byteStart"]:link["byteEnd"]] == b"https://umkm.example/kue"
    assert result.remote_id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
    assert result.remote_url == f"https://bsky.app/profile/{DID}/post/{RKEY}"


async def test_first_use_creates_a_session_and_stores_it_in_state(post_factory):
    script = Script(com_atproto_server_createSession=[httpx.Response(200, json=session_body())],
                    com_atproto_repo_createRecord=[created()])
    adapter = make(script, None, LANGS="id, en", PUBLIC_URL_BASE="https://bsky.example/")
    result = await adapter.publish(post_factory(text="Halo Balikpapan"))
    assert script.calls() == ["com.atproto.server.createSession", "com.atproto.repo.createRecord"]
    login = script.sent[0]
    assert login.method == "POST" and "Authorization" not in login.headers
    assert body(login) == {"identifier": HANDLE, "password": PASSWORD}
    assert script.sent[1].headers["Authorization"] == f"Bearer {ACCESS2}"
    sent = body(script.sent[1])["record"]
    assert sent["langs"] == ["id", "en"] and "facets" not in sent and "embed" not in sent
    assert adapter.ctx.state.values == session_state(ACCESS2, REFRESH2)
    assert result.remote_url == f"https://bsky.example/profile/{DID}/post/{RKEY}"


async def test_a_stored_session_survives_a_restart_without_logging_in_again(post_factory):
    state = MemoryState(session_state())
    for _ in range(2):  # two adapter instances, as after a restart, sharing the stored state
        script = Script(com_atproto_repo_createRecord=[created()])
        ctx = ChannelContext(name="k", options={"HANDLE": HANDLE, "APP_PASSWORD": PASSWORD, "BASE_URL": BASE},
                             state=state)
        await BlueskyAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(script))).publish(post_factory())
        assert script.calls() == ["com.atproto.repo.createRecord"]


async def test_image_post_uploads_raw_bytes_then_embeds_images_with_alt_and_aspect_ratio(post_factory, tmp_path):
    image = png(tmp_path / "kue.png", 1200, 900)
    script = Script(com_atproto_repo_uploadBlob=[httpx.Response(200, json={"blob": BLOB})],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state()).publish(post_factory(image=image))
    upload = script.last("com.atproto.repo.uploadBlob")
    assert upload.method == "POST"
    assert upload.headers["Content-Type"] == "image/png"
    assert upload.headers["Authorization"] == f"Bearer {ACCESS}"
    assert upload.content == image.read_bytes()
    embed = body(script.last("com.atproto.repo.createRecord"))["record"]["embed"]
    assert embed == {"$type": "app.bsky.embed.images", "images": [
        {"image": BLOB, "alt": "Kue lapis legit di atas piring", "aspectRatio": {"width": 1200, "height": 900}}]}


async def test_several_images_embed_up_to_four_in_order_each_with_alt_and_aspect_ratio(post_factory, tmp_path):
    blobs = []

    def upload(request: httpx.Request) -> httpx.Response:
        blob = {**BLOB, "ref": {"$link": f"bafkreiblob{len(blobs)}"}, "size": len(request.content)}
        blobs.append(blob)
        return httpx.Response(200, json={"blob": blob})

    images = [dataclasses.replace(png(tmp_path / f"kue{i}.png", 100 + i, 50), alt_text=f"Kue {i}") for i in range(5)]
    script = Script(com_atproto_repo_uploadBlob=upload, com_atproto_repo_createRecord=[created()])
    await make(script, session_state()).publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    assert script.calls().count("com.atproto.repo.uploadBlob") == 4
    embed = body(script.last("com.atproto.repo.createRecord"))["record"]["embed"]
    assert embed == {"$type": "app.bsky.embed.images", "images": [
        {"image": blobs[i], "alt": f"Kue {i}", "aspectRatio": {"width": 100 + i, "height": 50}} for i in range(4)]}
    # with a link the post's one embed is the card: only the cover goes, as its thumb
    script = Script(com_atproto_repo_uploadBlob=upload, com_atproto_repo_createRecord=[created()])
    await make(script, session_state()).publish(post_factory(image=images[0], more_images=tuple(images[1:]),
                                                             link="https://umkm.example/kue", title="Kue"))
    assert script.calls().count("com.atproto.repo.uploadBlob") == 1
    card = body(script.last("com.atproto.repo.createRecord"))["record"]["embed"]
    assert card["$type"] == "app.bsky.embed.external" and card["external"]["thumb"] == blobs[-1]


async def test_a_phone_photo_is_uploaded_without_exif_and_with_its_upright_aspect_ratio(post_factory, tmp_path):
    path = tmp_path / "kue.jpg"
    path.write_bytes(image_bytes("JPEG", 1200, 900, orientation=6, gps=True))  # held upright: 900 × 1200
    script = Script(com_atproto_repo_uploadBlob=[httpx.Response(200, json={"blob": BLOB})],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state()).publish(post_factory(image=Media.from_path(path, alt_text="Kue lapis")))
    upload = script.last("com.atproto.repo.uploadBlob")
    assert upload.headers["Content-Type"] == "image/jpeg"
    sent = Image.open(io.BytesIO(upload.content))
    assert dict(sent.getexif()) == {} and b"PhoneMaker" not in upload.content  # no GPS, no camera
    assert sent.size == (900, 1200)
    embed = body(script.last("com.atproto.repo.createRecord"))["record"]["embed"]
    assert embed["images"][0]["aspectRatio"] == {"width": 900, "height": 1200}


async def test_a_file_that_is_not_a_whole_image_is_rejected_before_any_request(post_factory, tmp_path):
    path = tmp_path / "kue.png"
    path.write_bytes(image_bytes("PNG", 64, 48)[:70])
    script = Script()
    with pytest.raises(errors.RejectedContent, match="kue.png: the image cannot be read"):
        await make(script, session_state()).publish(post_factory(image=Media.from_path(path)))
    assert script.sent == []


async def test_image_with_link_becomes_the_link_card_thumb(post_factory, tmp_path):
    script = Script(com_atproto_repo_uploadBlob=[httpx.Response(200, json={"blob": BLOB})],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state()).publish(post_factory(image=png(tmp_path / "k.png"), link="https://umkm.example/kue"))
    embed = body(script.last("com.atproto.repo.createRecord"))["record"]["embed"]
    assert embed == {"$type": "app.bsky.embed.external", "external": {
        "uri": "https://umkm.example/kue", "title": "", "description": "", "thumb": BLOB}}


async def test_image_over_one_megabyte_is_rejected_before_any_request(post_factory, tmp_path):
    script = Script()
    with pytest.raises(errors.RejectedContent):
        await make(script, session_state()).publish(post_factory(image=png(tmp_path / "big.png", 600, 600, noise=True)))
    assert script.sent == []


async def test_blob_too_large_answer_is_rejected_content(post_factory, tmp_path):
    script = Script(com_atproto_repo_uploadBlob=[xerr(413, "PayloadTooLarge", "request entity too large")])
    with pytest.raises(errors.RejectedContent) as info:
        await make(script, session_state()).publish(post_factory(image=png(tmp_path / "k.png")))
    no_secret(info.value)


# --- session refresh -----------------------------------------------------------------


async def test_expired_token_400_refreshes_with_the_refresh_jwt_and_retries_once(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(400, "ExpiredToken", "Token has expired"), created()],
                    com_atproto_server_refreshSession=[httpx.Response(200, json=session_body())])
    adapter = make(script, session_state())
    await adapter.publish(post_factory())
    assert script.calls() == ["com.atproto.repo.createRecord", "com.atproto.server.refreshSession",
                              "com.atproto.repo.createRecord"]
    refresh = script.sent[1]
    assert refresh.method == "POST" and refresh.content == b""
    assert refresh.headers["Authorization"] == f"Bearer {REFRESH}"
    assert script.sent[2].headers["Authorization"] == f"Bearer {ACCESS2}"
    assert adapter.ctx.state.values == session_state(ACCESS2, REFRESH2)


async def test_access_token_close_to_expiry_is_refreshed_ahead_of_the_call(post_factory):
    soon = jwt("soon", NOW + dt.timedelta(minutes=5))
    script = Script(com_atproto_server_refreshSession=[httpx.Response(200, json=session_body())],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state(access=soon)).publish(post_factory())
    assert script.calls() == ["com.atproto.server.refreshSession", "com.atproto.repo.createRecord"]
    assert script.sent[1].headers["Authorization"] == f"Bearer {ACCESS2}"


async def test_spent_refresh_token_falls_back_to_a_new_session(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(400, "ExpiredToken", "Token has expired"), created()],
                    com_atproto_server_refreshSession=[xerr(400, "ExpiredToken", "Token has been revoked")],
                    com_atproto_server_createSession=[httpx.Response(200, json=session_body())])
    adapter = make(script, session_state())
    await adapter.publish(post_factory())
    assert script.calls() == ["com.atproto.repo.createRecord", "com.atproto.server.refreshSession",
                              "com.atproto.server.createSession", "com.atproto.repo.createRecord"]
    assert adapter.ctx.state.get("refreshJwt") == REFRESH2


async def test_expired_refresh_jwt_is_not_sent_and_a_new_session_is_created(post_factory):
    old = jwt("old-refresh", NOW - dt.timedelta(days=1))
    expired = jwt("expired", NOW - dt.timedelta(minutes=1))
    script = Script(com_atproto_server_createSession=[httpx.Response(200, json=session_body())],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state(access=expired, refresh=old)).publish(post_factory())
    assert script.calls() == ["com.atproto.server.createSession", "com.atproto.repo.createRecord"]


async def test_bad_app_password_after_failed_refresh_is_an_auth_error_with_a_clear_reason(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(400, "ExpiredToken", "Token has expired")],
                    com_atproto_server_refreshSession=[xerr(400, "InvalidToken", "Token could not be verified")],
                    com_atproto_server_createSession=[
                        xerr(401, "AuthenticationRequired", "Invalid identifier or password")])
    with pytest.raises(errors.AuthError) as info:
        await make(script, session_state()).publish(post_factory())
    assert "check HANDLE and APP_PASSWORD" in str(info.value)
    assert "Invalid identifier or password" in str(info.value)
    no_secret(info.value)


async def test_email_code_required_login_names_the_reason(post_factory):
    script = Script(com_atproto_server_createSession=[
        xerr(401, "AuthFactorTokenRequired", "A sign in code has been sent to your email address")])
    with pytest.raises(errors.AuthError) as info:
        await make(script).publish(post_factory())
    assert "app password" in str(info.value)
    no_secret(info.value)


async def test_token_still_refused_after_refresh_is_an_auth_error(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(401, "AuthenticationRequired", "Invalid token")],
                    com_atproto_server_refreshSession=[httpx.Response(200, json=session_body())])
    with pytest.raises(errors.AuthError) as info:
        await make(script, session_state()).publish(post_factory())
    assert script.calls() == ["com.atproto.repo.createRecord", "com.atproto.server.refreshSession",
                              "com.atproto.repo.createRecord"]
    assert info.value.status == 401
    no_secret(info.value)


async def test_changed_handle_logs_in_instead_of_refreshing_the_old_accounts_session(post_factory):
    script = Script(com_atproto_server_createSession=[httpx.Response(200, json=session_body())],
                    com_atproto_repo_createRecord=[created()])
    await make(script, session_state() | {"identifier": "old.bsky.social"}).publish(post_factory())
    assert script.calls() == ["com.atproto.server.createSession", "com.atproto.repo.createRecord"]


# --- errors ----------------------------------------------------------------------------


async def test_rate_limit_uses_ratelimit_reset_epoch_seconds(post_factory):
    reset = int((NOW + dt.timedelta(minutes=37)).timestamp())
    script = Script(com_atproto_repo_createRecord=[xerr(
        429, "RateLimitExceeded", "Rate Limit Exceeded",
        {"RateLimit-Limit": "5000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
         "RateLimit-Policy": "5000;w=3600", "Retry-After": "2220"})])
    with pytest.raises(errors.RateLimited) as info:
        await make(script, session_state()).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(minutes=37)
    assert info.value.retry_at.tzinfo is not None


async def test_rate_limit_without_reset_header_uses_retry_after_seconds(post_factory):
    script = Script(com_atproto_server_createSession=[xerr(429, "RateLimitExceeded", "Too many logins",
                                                           {"Retry-After": "120"})])
    with pytest.raises(errors.RateLimited) as info:
        await make(script).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(seconds=120)


async def test_invalid_request_is_rejected_content(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(
        400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes")])
    with pytest.raises(errors.RejectedContent) as info:
        await make(script, session_state()).publish(post_factory())
    assert "300 graphemes" in str(info.value)


async def test_server_error_checks_the_record_key_and_is_transient_when_absent(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(500, "InternalServerError", "Internal Server Error")],
                    com_atproto_repo_getRecord=[xerr(400, "RecordNotFound", "Could not locate record")])
    with pytest.raises(errors.Transient) as info:
        await make(script, session_state()).publish(post_factory())
    assert info.value.status == 500
    no_secret(info.value)


async def test_repeated_create_that_errors_resolves_to_the_record_an_earlier_attempt_made(post_factory):
    # The reference PDS answers 500 when the record key already exists.
    script = Script(com_atproto_repo_createRecord=[xerr(500, "InternalServerError", "Internal Server Error")],
                    com_atproto_repo_getRecord=[record()])
    result = await make(script, session_state()).publish(post_factory())
    assert result.remote_id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
    assert result.remote_url == f"https://bsky.app/profile/{DID}/post/{RKEY}"


async def test_existing_record_with_other_text_is_a_duplicate_naming_it(post_factory):
    script = Script(com_atproto_repo_createRecord=[xerr(409, "RecordAlreadyExists", "Record already exists")],
                    com_atproto_repo_getRecord=[record("teks lama")])
    with pytest.raises(errors.Duplicate) as info:
        await make(script, session_state()).publish(post_factory())
    assert info.value.remote_id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
    assert info.value.remote_url == f"https://bsky.app/profile/{DID}/post/{RKEY}"


async def test_gateway_timeout_is_unknown_outcome_when_the_record_is_not_there_yet(post_factory):
    script = Script(com_atproto_repo_createRecord=[httpx.Response(504, text="Gateway Timeout")],
                    com_atproto_repo_getRecord=[xerr(400, "RecordNotFound", "Could not locate record")])
    with pytest.raises(errors.UnknownOutcome):
        await make(script, session_state()).publish(post_factory())


async def test_timeout_after_sending_is_unknown_outcome_without_secrets(post_factory):
    def timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(errors.UnknownOutcome) as info:
        await make(Script(com_atproto_repo_createRecord=timeout), session_state()).publish(post_factory())
    no_secret(info.value)


# --- reconcile and check ------------------------------------------------------------------


async def test_reconcile_finds_the_post_by_its_record_key(post_factory):
    script = Script(com_atproto_repo_getRecord=[record()])
    result = await make(script, session_state()).reconcile(post_factory())
    request = script.sent[0]
    assert request.method == "GET"
    assert dict(request.url.params) == {"repo": DID, "collection": "app.bsky.feed.post", "rkey": RKEY}
    assert result is not None and result.remote_url == f"https://bsky.app/profile/{DID}/post/{RKEY}"
    assert BlueskyAdapter.rules.can_reconcile


async def test_reconcile_record_not_found_means_not_published(post_factory):
    script = Script(com_atproto_repo_getRecord=[xerr(400, "RecordNotFound", "Could not locate record")])
    assert await make(script, session_state()).reconcile(post_factory()) is None


async def test_reconcile_server_error_cannot_tell(post_factory):
    script = Script(com_atproto_repo_getRecord=[xerr(502, "UpstreamFailure", "Upstream Failure")])
    with pytest.raises(errors.UnknownOutcome):
        await make(script, session_state()).reconcile(post_factory())


async def test_check_calls_get_session():
    script = Script(com_atproto_server_getSession=[httpx.Response(200, json={
        "did": DID, "handle": HANDLE, "email": "umkm@example.com", "emailConfirmed": True, "active": True})])
    assert await make(script, session_state()).check() == f"Bluesky @{HANDLE} ({DID})"
    assert script.sent[0].method == "GET" and script.sent[0].headers["Authorization"] == f"Bearer {ACCESS}"


async def test_check_with_a_bad_password_is_an_auth_error_and_unreachable_is_transient():
    script = Script(com_atproto_server_createSession=[
        xerr(401, "AuthenticationRequired", "Invalid identifier or password")])
    with pytest.raises(errors.AuthError) as info:
        await make(script).check()
    no_secret(info.value)

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(errors.Transient):
        await make(Script(com_atproto_server_getSession=refuse), session_state()).check()


def test_options_and_rules():
    assert BlueskyAdapter.validate_options({"HANDLE": HANDLE, "APP_PASSWORD": PASSWORD}) == []
    assert "APP_PASSWORD" in BlueskyAdapter.validate_options({"HANDLE": HANDLE})[0]
    assert BlueskyAdapter.secret_keys == {"APP_PASSWORD"}
    rules = BlueskyAdapter.rules
    assert [(r.limit, r.method) for r in rules.text] == [(300, "graphemes"), (3000, "bytes")]
    assert rules.max_image_bytes == 1_000_000
    assert not rules.text[0].fits("é" * 301) and rules.text[1].fits("é" * 300)
    assert not rules.text[1].fits("🎉" * 751) and rules.text[0].fits("🎉" * 300)
