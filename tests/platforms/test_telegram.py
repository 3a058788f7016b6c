"""The Telegram adapter against the Bot API's documented requests and answers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import traceback
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from html.parser import HTMLParser

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.telegram import TelegramAdapter, to_html
from scheduler.redact import RedactingFilter
from tests.platforms.conftest import make_post

TOKEN = "123456789:SECRET-telegram-token-abcdef"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
TEXT = "Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"
CHANNEL = {"id": -1001234567890, "title": "UMKM Balikpapan", "username": "umkmbalikpapan", "type": "channel"}


def message(message_id: int = 321, chat: dict | None = None, **extra) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": {"message_id": message_id, "date": 1772413200,
                                                            "chat": chat or CHANNEL, **extra}})


def failure(status: int, description: str, **parameters) -> httpx.Response:
    body: dict = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(status, json=body)


class FakeBotApi:
    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | httpx.Response):
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request) if callable(self.answer) else self.answer


def make(fake: FakeBotApi, **options: str) -> TelegramAdapter:
    opts = {"BOT_TOKEN": TOKEN, "CHAT_ID": "@umkmbalikpapan", **options}
    ctx = ChannelContext(name="tg_umkm", options=opts, state=MemoryState())
    return TelegramAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(fake)))


POST_DEFAULTS = {"text": TEXT, "link": "https://umkm.example/kue", "title": "Kue Lapis"}


def no_secret(exc: BaseException) -> None:
    """Neither the token nor its secret half in the error or anything chained to it."""
    seen: BaseException | None = exc
    while seen is not None:
        shown = "".join(traceback.format_exception_only(seen)) + repr(seen)
        assert "SECRET" not in shown and TOKEN not in shown, shown
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


class TelegramHtml(HTMLParser):
    """What Telegram shows for a parse_mode=HTML text: tags become entities, entities become text.

    Like Telegram, it knows only the named entities &lt; &gt; &amp; &quot; (and numeric ones)
    and only its own tags; anything else makes the test fail as Telegram would reject it.
    """

    TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
            "span", "blockquote", "tg-emoji"}

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        assert tag in self.TAGS, f"Telegram rejects <{tag}>"

    def handle_endtag(self, tag):
        assert tag in self.TAGS, f"Telegram rejects </{tag}>"

    def handle_data(self, data):
        assert "&" not in data, f"unescaped & in {data!r}"
        self.out.append(data)

    def handle_entityref(self, name):
        self.out.append({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name])

    def handle_charref(self, name):
        self.out.append(chr(int(name[1:], 16) if name.startswith(("x", "X")) else int(name)))


def rendered(html_text: str) -> str:
    parser = TelegramHtml()
    parser.feed(html_text)
    parser.close()
    return "".join(parser.out)


def multipart_fields(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    parsed = BytesParser(policy=HTTP).parsebytes(head + request.content)
    return {part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_content_type(),
                                                                  part.get_payload(decode=True))
            for part in parsed.iter_parts()}


# --- publishing --------------------------------------------------------------------


async def test_text_post_is_send_message_with_html_and_a_link_preview(post_factory):
    fake = FakeBotApi(message())
    result = await make(fake).publish(make_post(POST_DEFAULTS))
    [request] = fake.requests
    assert request.method == "POST"
    assert str(request.url) == f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "chat_id": "@umkmbalikpapan", "text": TEXT, "parse_mode": "HTML",
        "link_preview_options": {"url": "https://umkm.example/kue"}}
    assert result.remote_id == "321"
    assert result.remote_url == "https://t.me/umkmbalikpapan/321"


@pytest.mark.parametrize("name", ["Kue_Lapis *Spesial* [Promo]", "Bolu <Pandan> & Kopi \"Mantap\" 5>3",
                                  "A_b*c[d](e)~f`g>h#i+j-k=l|m{n}o.p!q &amp; literally"])
async def test_special_characters_arrive_exactly_as_typed(post_factory, name):
    fake = FakeBotApi(message())
    text = f"{name} cuma Rp 25.000! https://umkm.example/kue?a=1&b=2 😋"
    await make(fake).publish(post_factory(text=text, link="https://umkm.example/kue?a=1&b=2"))
    sent = json.loads(fake.requests[0].content)
    assert sent["parse_mode"] == "HTML"
    assert rendered(sent["text"]) == text


def test_to_html_escapes_only_what_telegram_needs():
    assert to_html("Kue_Lapis *Spesial* [Promo]") == "Kue_Lapis *Spesial* [Promo]"
    assert to_html('a < b & c > "d"') == 'a &lt; b &amp; c &gt; "d"'


async def test_link_missing_from_the_text_is_appended(post_factory):
    fake = FakeBotApi(message())
    await make(fake).publish(post_factory(text="Kue Lapis hari ini"))
    assert json.loads(fake.requests[0].content)["text"] == "Kue Lapis hari ini\nhttps://umkm.example/kue"


async def test_link_preview_can_be_disabled_and_notifications_silenced(post_factory):
    fake = FakeBotApi(message())
    await make(fake, LINK_PREVIEW="false", DISABLE_NOTIFICATION="true").publish(post_factory())
    body = json.loads(fake.requests[0].content)
    assert body["link_preview_options"] == {"is_disabled": True}
    assert body["disable_notification"] is True


async def test_numeric_chat_id_is_sent_as_a_number_and_linked_by_internal_id(post_factory):
    fake = FakeBotApi(message(77, chat={"id": -1001234567890, "title": "Privat", "type": "channel"}))
    result = await make(fake, CHAT_ID="-1001234567890").publish(post_factory())
    assert json.loads(fake.requests[0].content)["chat_id"] == -1001234567890
    assert result.remote_url == "https://t.me/c/1234567890/77"


async def test_public_chat_configured_by_id_is_linked_by_its_username(post_factory):
    fake = FakeBotApi(message(78))
    result = await make(fake, CHAT_ID="-1001234567890").publish(post_factory())
    assert result.remote_url == "https://t.me/umkmbalikpapan/78"


async def test_basic_group_has_no_message_link(post_factory):
    fake = FakeBotApi(message(5, chat={"id": -4012345678, "title": "Grup", "type": "group"}))
    result = await make(fake, CHAT_ID="-4012345678").publish(post_factory())
    assert result.remote_id == "5" and result.remote_url is None


async def test_image_post_uploads_the_file_with_an_html_caption(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"kue" * 40)
    fake = FakeBotApi(message(322, photo=[{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90,
                                           "height": 90, "file_size": 1200}], caption=TEXT))
    text = "Kue_Lapis *Spesial* [Promo] <baru> & enak https://umkm.example/kue"
    result = await make(fake).publish(post_factory(text=text, image=Media.from_path(img)))
    [request] = fake.requests
    assert str(request.url) == f"https://api.telegram.org/bot{TOKEN}/sendPhoto"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = multipart_fields(request)
    assert set(fields) == {"chat_id", "caption", "parse_mode", "photo"}
    assert fields["photo"] == ("kue.jpg", "image/jpeg", img.read_bytes())
    assert fields["chat_id"][2] == b"@umkmbalikpapan"
    assert fields["parse_mode"][2] == b"HTML"
    assert rendered(fields["caption"][2].decode()) == text
    assert result.remote_id == "322"


async def test_several_images_go_as_one_album_with_the_caption_on_the_first(post_factory, tmp_path):
    images = []
    for i in range(3):
        img = tmp_path / f"kue{i}.jpg"
        img.write_bytes(b"\xff\xd8\xff\xe0" + bytes([i]) * 40)
        images.append(Media.from_path(img, alt_text="Kue"))
    album = [{"message_id": 330 + i, "date": 1772413200, "chat": CHANNEL, "media_group_id": "13911",
              "photo": [{"file_id": f"AgAC{i}", "file_unique_id": f"AQAD{i}", "width": 90, "height": 90}],
              **({"caption": TEXT} if i == 0 else {})} for i in range(3)]
    fake = FakeBotApi(httpx.Response(200, json={"ok": True, "result": album}))
    result = await make(fake, DISABLE_NOTIFICATION="true").publish(
        post_factory(image=images[0], more_images=tuple(images[1:])))
    [request] = fake.requests
    assert str(request.url) == f"https://api.telegram.org/bot{TOKEN}/sendMediaGroup"
    fields = multipart_fields(request)
    assert set(fields) == {"chat_id", "media", "disable_notification", "photo0", "photo1", "photo2"}
    assert fields["chat_id"][2] == b"@umkmbalikpapan" and fields["disable_notification"][2] == b"true"
    media = json.loads(fields["media"][2])
    assert [m["media"] for m in media] == ["attach://photo0", "attach://photo1", "attach://photo2"]
    assert all(m["type"] == "photo" for m in media)
    assert media[0]["parse_mode"] == "HTML" and rendered(media[0]["caption"]) == TEXT
    assert "caption" not in media[1] and "caption" not in media[2]
    assert [fields[f"photo{i}"] for i in range(3)] == [(f"kue{i}.jpg", "image/jpeg", images[i].read_bytes())
                                                       for i in range(3)]
    assert result.remote_id == "330" and result.remote_url == "https://t.me/umkmbalikpapan/330"


async def test_image_without_a_local_file_is_sent_by_url(post_factory, tmp_path):
    media = Media(path=tmp_path / "gone.jpg", mime="image/jpeg", size=100,
                  public_url="https://media.example/kue.jpg")
    fake = FakeBotApi(message())
    await make(fake).publish(post_factory(image=media))
    assert json.loads(fake.requests[0].content) == {"chat_id": "@umkmbalikpapan",
                                                    "photo": "https://media.example/kue.jpg",
                                                    "caption": TEXT, "parse_mode": "HTML"}


async def test_caption_is_counted_in_utf16_units_and_too_long_is_rejected_before_sending(post_factory, tmp_path):
    img = tmp_path / "kue.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 16)
    fake = FakeBotApi(message())
    fits = "😋" * 512  # 1,024 UTF-16 units, 512 code points
    await make(fake).publish(post_factory(text=fits, link=None, image=Media.from_path(img)))
    with pytest.raises(errors.RejectedContent, match="1026 UTF-16 units, over 1024"):
        await make(fake).publish(post_factory(text=fits + "!!", link=None, image=Media.from_path(img)))
    assert len(fake.requests) == 1
    assert TelegramAdapter.rules.text_rules(True)[0].limit == 1024
    assert TelegramAdapter.rules.text_rules(False)[0].limit == 4096


# --- errors ------------------------------------------------------------------------


async def raised(response: httpx.Response | Callable) -> errors.PublishError:
    fake = FakeBotApi(response)
    with pytest.raises(errors.PublishError) as info:
        await make(fake).publish(make_post(POST_DEFAULTS))
    no_secret(info.value)
    return info.value


@time_machine.travel(NOW, tick=False)
async def test_429_waits_retry_after_seconds_exactly():
    exc = await raised(failure(429, "Too Many Requests: retry after 35", retry_after=35))
    assert isinstance(exc, errors.RateLimited)
    assert exc.retry_at == NOW + dt.timedelta(seconds=35)


@pytest.mark.parametrize("status, description", [(401, "Unauthorized"), (404, "Not Found")])
async def test_bad_token_is_an_auth_error(status, description):
    exc = await raised(failure(status, description))
    assert type(exc) is errors.AuthError


@pytest.mark.parametrize("description", ["Forbidden: bot was kicked from the channel chat",
                                         "Forbidden: bot is not a member of the channel chat"])
async def test_bot_without_rights_is_an_auth_error_naming_the_chat(description):
    exc = await raised(failure(403, description))
    assert type(exc) is errors.AuthError
    assert description in str(exc) and "@umkmbalikpapan" in str(exc)


@pytest.mark.parametrize("description", ["Bad Request: chat not found", "Bad Request: message is too long",
                                         "Bad Request: can't parse entities: Unsupported start tag"])
async def test_400_is_rejected_content_with_the_description(description):
    exc = await raised(failure(400, description))
    assert type(exc) is errors.RejectedContent
    assert description in str(exc)


async def test_migrated_group_is_rejected_naming_the_new_chat_id():
    exc = await raised(failure(400, "Bad Request: group chat was upgraded to a supergroup chat",
                               migrate_to_chat_id=-1009876543210))
    assert type(exc) is errors.RejectedContent
    assert "CHAT_ID=-1009876543210" in str(exc)


@pytest.mark.parametrize("status, expected", [(500, errors.Transient), (502, errors.Transient),
                                              (504, errors.UnknownOutcome)])
async def test_server_errors(status, expected):
    exc = await raised(httpx.Response(status, text=f"<html>{status} at /bot{TOKEN}/sendMessage</html>"))
    assert type(exc) is expected


async def test_transport_errors_quoting_the_url_never_leak_the_token():
    def refuse(request):
        raise httpx.ConnectError(f"All connection attempts failed for {request.url}", request=request)

    exc = await raised(refuse)
    assert type(exc) is errors.Transient

    def timeout(request):
        raise httpx.ReadTimeout(f"timed out reading {request.url}", request=request)

    exc = await raised(timeout)
    assert type(exc) is errors.UnknownOutcome

    def reset(request):
        raise httpx.RemoteProtocolError(f"peer closed connection ({request.url})", request=request)

    assert type(await raised(reset)) is errors.UnknownOutcome


async def test_error_messages_are_safe_to_log(caplog):
    exc = await raised(failure(401, "Unauthorized"))
    logger = logging.getLogger("test.telegram")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.telegram"):
        logger.info("publish failed: %s (%s)", exc, f"https://api.telegram.org/bot{TOKEN}/sendMessage")
    assert caplog.records and "SECRET" not in caplog.text


# --- check and reconcile -----------------------------------------------------------


async def test_check_calls_get_me():
    fake = FakeBotApi(httpx.Response(200, json={"ok": True, "result": {
        "id": 123456789, "is_bot": True, "first_name": "UMKM Bot", "username": "umkm_bpn_bot",
        "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}}))
    assert await make(fake).check() == "@umkm_bpn_bot (bot id 123456789), posting to @umkmbalikpapan"
    assert str(fake.requests[0].url) == f"https://api.telegram.org/bot{TOKEN}/getMe"


async def test_check_with_a_revoked_token_is_an_auth_error_without_the_token():
    with pytest.raises(errors.AuthError) as info:
        await make(FakeBotApi(failure(401, "Unauthorized"))).check()
    no_secret(info.value)


async def test_cannot_reconcile(post_factory):
    assert TelegramAdapter.rules.can_reconcile is False
    with pytest.raises(errors.UnknownOutcome):
        await make(FakeBotApi(message())).reconcile(post_factory())


def test_options_are_checked_without_showing_the_token():
    assert TelegramAdapter.validate_options({"BOT_TOKEN": TOKEN, "CHAT_ID": "-1001234567890"}) == []
    problems = TelegramAdapter.validate_options({"BOT_TOKEN": "SECRET nope", "CHAT_ID": "umkm balikpapan"})
    assert len(problems) == 2 and not any("SECRET" in p for p in problems)
    assert any(re.search(r"CHAT_ID", p) for p in problems)
