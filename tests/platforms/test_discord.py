"""Discord webhook adapter against the documented request and response shapes (httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.discord import DiscordAdapter, parse_webhook_url
from tests.platforms.multipart_util import form_parts

HOOK_ID, TOKEN = "1143334455667788990", "SECRET-discord-webhook-token"
WEBHOOK_URL = f"https://discord.com/api/webhooks/{HOOK_ID}/{TOKEN}"
BASE = "http://127.0.0.1:9"
PATH = f"/api/v10/webhooks/{HOOK_ID}/{TOKEN}"
GUILD, CHANNEL, MESSAGE = "1000000000000000001", "1100000000000000002", "1200000000000000003"
WEBHOOK = {"type": 1, "id": HOOK_ID, "name": "Promo Kota", "channel_id": CHANNEL, "guild_id": GUILD,
           "application_id": None, "token": TOKEN}
MESSAGE_OBJ = {"id": MESSAGE, "type": 0, "content": "…", "channel_id": CHANNEL, "webhook_id": HOOK_ID,
               "timestamp": "2026-08-22T01:00:00.000000+00:00", "embeds": [], "attachments": []}
TEXT = "Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM @everyone"
NOW = dt.datetime(2026, 8, 22, 1, 0, tzinfo=dt.UTC)


class Recorder:
    def __init__(self, get=None, post=None):
        self.get = get or httpx.Response(200, json=WEBHOOK)
        self.post = post or httpx.Response(200, json=MESSAGE_OBJ)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        assert request.url.path == PATH, request.url
        return self.get if request.method == "GET" else self.post


def make(handler, state=None, **options) -> DiscordAdapter:
    opts = {"WEBHOOK_URL": WEBHOOK_URL, "BASE_URL": BASE, **options}
    ctx = ChannelContext(name="dc", options=opts, state=MemoryState(state))
    return DiscordAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


POST_DEFAULTS = {"text": TEXT}


async def test_text_post_waits_for_the_message_and_pings_nobody(post_factory):
    rec = Recorder()
    adapter = make(rec)
    result = await adapter.publish(post_factory())
    lookup, send = rec.sent
    assert lookup.method == "GET" and str(lookup.url) == f"{BASE}{PATH}"
    assert send.method == "POST" and send.url.params["wait"] == "true"
    assert send.headers["content-type"] == "application/json"
    assert send.headers["user-agent"] == "DiscordBot (https://pypi.org/project/promo-scheduler/, 0.1.0)"
    assert lookup.headers["user-agent"] == send.headers["user-agent"]
    assert json.loads(send.content) == {"content": TEXT, "allowed_mentions": {"parse": []}}
    assert result.remote_id == MESSAGE
    assert result.remote_url == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{MESSAGE}"
    assert adapter.ctx.state.get("guild_id") == GUILD


async def test_guild_id_is_cached_in_state_so_the_webhook_is_looked_up_once(post_factory):
    rec = Recorder()
    adapter = make(rec, state={"guild_id": GUILD})
    result = await adapter.publish(post_factory())
    assert [r.method for r in rec.sent] == ["POST"]
    assert result.remote_url == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{MESSAGE}"


async def test_link_becomes_an_embed_with_public_image(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff" + b"0" * 10)
    image = Media.from_path(img, public_url="https://media.example/kue.jpg")
    rec = Recorder()
    await make(rec, state={"guild_id": GUILD}, USERNAME="Promo Kota").publish(post_factory(
        link="https://umkm.example/kue", title="Kue Lapis", description="Kue lapis legit", image=image))
    body = json.loads(rec.sent[0].content)
    assert body["embeds"] == [{"url": "https://umkm.example/kue", "title": "Kue Lapis",
                               "description": "Kue lapis legit", "image": {"url": "https://media.example/kue.jpg"}}]
    assert body["username"] == "Promo Kota"
    assert body["allowed_mentions"] == {"parse": []}


async def test_long_embed_fields_are_clipped_to_discord_limits(post_factory):
    rec = Recorder()
    await make(rec, state={"guild_id": GUILD}).publish(post_factory(link="https://umkm.example/kue", title="T" * 300,
                                                            description="D" * 5000))
    embed = json.loads(rec.sent[0].content)["embeds"][0]
    assert len(embed["title"]) == 256 and len(embed["description"]) == 4096


async def test_image_without_public_url_is_uploaded_as_files0_with_payload_json(post_factory, tmp_path):
    img = tmp_path / "kue lapis.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    rec = Recorder()
    result = await make(rec, state={"guild_id": GUILD}).publish(post_factory(image=Media.from_path(img)))
    (send,) = rec.sent
    assert send.url.params["wait"] == "true"
    parts = form_parts(send)
    assert parts["files[0]"] == ("kue_lapis.png", "image/png", img.read_bytes())
    payload = json.loads(parts["payload_json"][2])
    assert payload == {"content": TEXT, "allowed_mentions": {"parse": []},
                       "attachments": [{"id": 0, "filename": "kue_lapis.png"}],
                       "embeds": [{"image": {"url": "attachment://kue_lapis.png"}}]}
    assert result.remote_id == MESSAGE


async def test_several_images_are_uploaded_as_attachments_the_cover_in_the_embed(post_factory, tmp_path):
    images = []
    for i, name in enumerate(("kue.png", "kue.png", "toko.png")):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * 32)
        images.append(Media.from_path(folder / name, alt_text=f"Kue {i}" if i != 1 else None))
    rec = Recorder()
    await make(rec, state={"guild_id": GUILD}).publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    (send,) = rec.sent
    parts = form_parts(send)
    assert [parts[f"files[{i}]"][0] for i in range(3)] == ["kue.png", "1_kue.png", "toko.png"]
    assert [parts[f"files[{i}]"][2] for i in range(3)] == [m.read_bytes() for m in images]
    payload = json.loads(parts["payload_json"][2])
    assert payload["attachments"] == [{"id": 0, "filename": "kue.png", "description": "Kue 0"},
                                      {"id": 1, "filename": "1_kue.png"},
                                      {"id": 2, "filename": "toko.png", "description": "Kue 2"}]
    assert payload["embeds"] == [{"image": {"url": "attachment://kue.png"}}]


@time_machine.travel(NOW, tick=False)
async def test_429_uses_the_json_retry_after_float_exactly(post_factory):
    body = {"message": "You are being rate limited.", "retry_after": 64.57, "global": False}
    rec = Recorder(post=httpx.Response(429, json=body, headers={"Retry-After": "65", "X-RateLimit-Scope": "user"}))
    with pytest.raises(errors.RateLimited) as info:
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(seconds=64.57)


@time_machine.travel(NOW, tick=False)
async def test_429_without_json_falls_back_to_retry_after_header(post_factory):
    rec = Recorder(post=httpx.Response(429, text="rate limited", headers={"Retry-After": "7"}))
    with pytest.raises(errors.RateLimited) as info:
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(seconds=7)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401, json={"message": "Invalid Webhook Token", "code": 50027}), errors.AuthError),
        (httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015}), errors.AuthError),
        (httpx.Response(400, json={"code": 50035, "message": "Invalid Form Body", "errors": {"content": {
            "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}),
         errors.RejectedContent),
        (httpx.Response(400, json={"message": "Cannot send an empty message", "code": 50006}), errors.RejectedContent),
        (httpx.Response(413, json={"message": "Request entity too large", "code": 40005}), errors.RejectedContent),
        (httpx.Response(500, json={"message": "500: Internal Server Error", "code": 0}), errors.Transient),
        (httpx.Response(502, text="<html>502 Bad Gateway</html>"), errors.Transient),
        (httpx.Response(504, text="Gateway Timeout"), errors.UnknownOutcome),
    ],
)
async def test_errors_map_to_typed_errors_without_the_token(post_factory, response, expected):
    rec = Recorder(post=response)
    with pytest.raises(expected) as info:
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
    assert type(info.value) is expected
    assert info.value.status == response.status_code
    assert "SECRET" not in str(info.value)


async def test_50035_message_names_the_code(post_factory):
    body = {"code": 50035, "message": "Invalid Form Body", "errors": {}}
    rec = Recorder(post=httpx.Response(400, json=body))
    with pytest.raises(errors.RejectedContent, match="code 50035"):
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())


async def test_revoked_webhook_found_during_lookup_is_auth_error_and_nothing_is_posted(post_factory):
    rec = Recorder(get=httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015}))
    with pytest.raises(errors.AuthError, match="10015"):
        await make(rec).publish(post_factory())
    assert [r.method for r in rec.sent] == ["GET"]


async def test_lookup_timeout_is_transient_but_post_timeout_is_unknown(post_factory):
    def lookup_timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(errors.Transient) as info:
        await make(lookup_timeout).publish(post_factory())
    assert "SECRET" not in str(info.value)
    with pytest.raises(errors.UnknownOutcome) as info2:
        await make(lookup_timeout, state={"guild_id": GUILD}).publish(post_factory())
    assert "SECRET" not in str(info2.value)


async def test_connect_error_message_does_not_leak_the_token(post_factory):
    def refuse(request):
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    with pytest.raises(errors.Transient) as info:
        await make(refuse, state={"guild_id": GUILD}).publish(post_factory())
    assert "SECRET" not in str(info.value) and TOKEN not in str(info.value)


async def test_check_reads_the_webhook_and_caches_the_guild():
    rec = Recorder()
    adapter = make(rec)
    summary = await adapter.check()
    assert "Promo Kota" in summary and CHANNEL in summary
    assert adapter.ctx.state.get("guild_id") == GUILD
    assert [r.method for r in rec.sent] == ["GET"]


async def test_check_with_revoked_webhook_is_auth_error():
    rec = Recorder(get=httpx.Response(401, json={"message": "Invalid Webhook Token", "code": 50027}))
    with pytest.raises(errors.AuthError) as info:
        await make(rec).check()
    assert "SECRET" not in str(info.value)


async def test_reconcile_is_not_possible(post_factory):
    assert DiscordAdapter.rules.can_reconcile is False and DiscordAdapter.rules.idempotent is False
    with pytest.raises(errors.UnknownOutcome):
        await make(Recorder()).reconcile(post_factory())


def test_webhook_url_parsing_and_validation():
    assert parse_webhook_url(WEBHOOK_URL) == (HOOK_ID, TOKEN)
    assert parse_webhook_url(f"https://discordapp.com/api/v10/webhooks/{HOOK_ID}/{TOKEN}") == (HOOK_ID, TOKEN)
    assert parse_webhook_url("https://example.com/hook") is None
    assert DiscordAdapter.validate_options({"WEBHOOK_URL": WEBHOOK_URL}) == []
    assert any("WEBHOOK_URL" in p for p in DiscordAdapter.validate_options({"WEBHOOK_URL": "https://example.com/x"}))
    assert DiscordAdapter.rules.text[0].limit == 2000


# --- threads, forum channels, Cloudflare ----------------------------------------------


async def test_thread_id_on_the_webhook_url_is_kept_so_the_post_lands_in_the_thread(post_factory):
    rec = Recorder()
    adapter = make(rec, WEBHOOK_URL=f"{WEBHOOK_URL}?thread_id=1300000000000000004")
    await adapter.publish(post_factory())
    lookup, send = rec.sent
    assert "thread_id" not in lookup.url.params  # the webhook object is the channel's, not the thread's
    assert dict(send.url.params) == {"wait": "true", "thread_id": "1300000000000000004"}
    assert "thread_name" not in json.loads(send.content)
    assert "thread 1300000000000000004" in await adapter.check()


async def test_thread_name_opens_a_forum_post_in_json_and_in_payload_json(post_factory, tmp_path):
    rec = Recorder()
    await make(rec, state={"guild_id": GUILD}, THREAD_NAME="Promo UMKM").publish(post_factory())
    assert json.loads(rec.sent[0].content)["thread_name"] == "Promo UMKM"
    assert dict(rec.sent[0].url.params) == {"wait": "true"}
    img = tmp_path / "kue.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    rec = Recorder()
    await make(rec, state={"guild_id": GUILD}, THREAD_NAME="Promo UMKM").publish(post_factory(image=Media.from_path(img)))
    assert json.loads(form_parts(rec.sent[0])["payload_json"][2])["thread_name"] == "Promo UMKM"


async def test_forum_channel_without_a_thread_pauses_the_channel_naming_the_key(post_factory):
    body = {"message": "Webhooks posted to forum channels must have a thread_name or thread_id", "code": 220001}
    rec = Recorder(post=httpx.Response(400, json=body))
    with pytest.raises(errors.ConfigError) as info:
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
    assert "PROMO_CHANNEL_DC_THREAD_NAME" in str(info.value) and "SECRET" not in str(info.value)


def test_thread_options_are_validated():
    too_long = DiscordAdapter.validate_options({"WEBHOOK_URL": WEBHOOK_URL, "THREAD_NAME": "x" * 101})
    assert any("THREAD_NAME" in p and "100" in p for p in too_long)
    both = DiscordAdapter.validate_options({"WEBHOOK_URL": f"{WEBHOOK_URL}?thread_id=13", "THREAD_NAME": "Promo"})
    assert any("cannot both" in p for p in both)
    assert DiscordAdapter.validate_options({"WEBHOOK_URL": f"{WEBHOOK_URL}?thread_id=13"}) == []


CLOUDFLARE_1020 = """<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>
<body><div class="cf-error-details"><h1>Error 1020</h1><h2>Access denied</h2><p>This website is using a
security service to protect itself from online attacks.</p></div></body></html>"""


async def test_cloudflare_403_is_transient_and_does_not_pause_the_channel(post_factory):
    blocked = httpx.Response(403, text=CLOUDFLARE_1020, headers={"content-type": "text/html", "cf-ray": "8c1f2e3d4a5b6c7d"})
    rec = Recorder(post=blocked)
    with pytest.raises(errors.Transient) as info:
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
    assert "Cloudflare" in str(info.value) and "1020" in str(info.value) and "8c1f2e3d4a5b6c7d" in str(info.value)
    assert not isinstance(info.value, errors.AuthError) and "SECRET" not in str(info.value)
    plain = Recorder(get=httpx.Response(403, text="error code: 1020"))
    with pytest.raises(errors.Transient, match="1020"):
        await make(plain).check()


async def test_discord_own_403_with_a_json_code_still_pauses_the_channel(post_factory):
    rec = Recorder(post=httpx.Response(403, json={"message": "Missing Permissions", "code": 50013}))
    with pytest.raises(errors.AuthError, match="50013"):
        await make(rec, state={"guild_id": GUILD}).publish(post_factory())
