"""The ``telegram`` platform: a bot posts to a channel or group (``sendMessage`` / ``sendPhoto``).

Text goes out with ``parse_mode=HTML`` and only ``&``, ``<`` and ``>`` escaped, so that
whatever a product is called (``Kue_Lapis *Spesial* [Promo]``) arrives exactly as typed.
The bot token sits in the URL path (``/bot<TOKEN>/<method>``): it is a secret key, so
:meth:`Adapter.redact` removes it from every message, and no error here quotes a URL.
The Bot API cannot read a chat's history, so an unknown outcome cannot be reconciled.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scheduler.errors import AuthError, PublishError, RateLimited, RejectedContent, Transient, UnknownOutcome
from scheduler.platforms.base import (
    MB,
    Adapter,
    ImageRules,
    KeyDoc,
    Media,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
    json_body,
    no_metrics,
    utcnow,
    with_link,
)
from scheduler.textrules import TextRule
from scheduler.values import is_true

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

_CHAT_ID = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


def to_html(text: str) -> str:
    """``text`` for ``parse_mode=HTML``: Telegram then shows exactly ``text``."""
    return html.escape(text, quote=False)


class TelegramAdapter(Adapter):
    """Posts to a Telegram channel or group through a bot that is an admin there."""

    platform = "telegram"
    rules = PlatformRules(
        # Telegram counts after entity parsing; entity offsets are UTF-16, so count in UTF-16 units.
        text=(TextRule(4096, "utf16"),),
        text_with_image=(TextRule(1024, "utf16"),),
        # sendPhoto: 10 MB uploaded, width + height <= 10,000, ratio <= 20; albums (sendMediaGroup) of 2–10.
        images=ImageRules(formats=frozenset({"image/jpeg", "image/png", "image/webp"}), max_bytes=10 * MB,
                          max_side_sum=10_000, min_ratio=1 / 20, max_ratio=20, per_post=10),
        can_reconcile=False,
    )
    required_keys = (("BOT_TOKEN", "CHAT_ID"),)
    optional_keys = ("LINK_PREVIEW", "DISABLE_NOTIFICATION", "PHOTO_BY_URL")
    secret_keys = frozenset({"BOT_TOKEN"})
    default_base_url = "https://api.telegram.org"
    help = ("Telegram: BOT_TOKEN from @BotFather (/newbot); add the bot to the channel as an admin "
            "allowed to post; CHAT_ID is @channelusername or the numeric -100… id.")

    budget = (SendBudget(20, dt.timedelta(minutes=1), "Bot FAQ: about 20 messages per minute per group or channel"),)
    token_keys = ()
    metrics = no_metrics("the Bot API gives no view or reaction counts for channel posts")
    doc_title = "Telegram channel or group (platform=telegram) ---"
    doc_setup = ("Keys: in Telegram, talk to @BotFather: /newbot gives the bot token (/token shows it again, /revoke\n"
                "replaces it). Then add the bot to the channel (Channel info > Administrators > Add Admin) with the\n"
                "\"Post Messages\" right, or to the group as an admin.")
    doc_channel = "TG_UMKM"
    key_docs = {
        "BOT_TOKEN": KeyDoc("Required: the bot token <digits>:<letters> from @BotFather. Secret (it is part of every API URL).", example="123456789:..."),
        "CHAT_ID": KeyDoc(
            ("Required: @channelusername for a public channel, or the numeric id (-100… for channels and supergroups;\n"
            "forward a channel post to @userinfobot or read getUpdates to find it)."),
            example="@umkmbalikpapan"),
        "LINK_PREVIEW": KeyDoc("Optional: show a preview of the post's link under text posts (default true; captions never get one).", example="true"),
        "DISABLE_NOTIFICATION": KeyDoc("Optional: send silently, without a notification sound (default false).", example="false"),
        "PHOTO_BY_URL": KeyDoc(
            ("Optional: send images by their public URL instead of uploading the file (default false; needs\n"
            "PROMO_PUBLIC_MEDIA_BASE_URL; Telegram fetches at most 5 MB by URL, 10 MB by upload)."),
            example="false"),
        "BASE_URL": KeyDoc(
            ("Optional: scheme, host and port of the Bot API server, for tests or a self-hosted telegram-bot-api\n"
            "(default https://api.telegram.org; the adapter adds /bot<TOKEN>/<method>)."),
            example="https://api.telegram.org"),
    }

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        token, chat = options.get("BOT_TOKEN"), options.get("CHAT_ID")
        if token and not _BOT_TOKEN.match(token):
            problems.append("BOT_TOKEN does not look like a bot token (<digits>:<letters>, from @BotFather)")
        if chat and not _CHAT_ID.match(chat):
            problems.append(f"CHAT_ID {chat!r} is neither @channelusername nor a numeric chat id")
        return problems

    @property
    def chat_id(self) -> str:
        return self.option("CHAT_ID") or ""

    def _flag(self, key: str, default: bool) -> bool:
        value = self.option(key)
        return is_true(value, default)

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call one Bot API method; the ``result`` on success, a typed error otherwise."""
        url = f"{self.base_url}/bot{self.option('BOT_TOKEN')}/{method}"
        response = await self.send("POST", url, **kwargs)
        body = json_body(response)
        if response.is_success and body.get("ok") is True:
            result = body.get("result")
            if isinstance(result, list):  # sendMediaGroup: the album's messages
                return {"messages": result}
            return result if isinstance(result, dict) else {}
        raise self._error(response, body, method)

    def _error(self, response: httpx.Response, body: dict[str, Any], method: str) -> PublishError:
        status = response.status_code
        # Each value read once and checked by name, so mypy narrows it (a repeated .get() is not).
        raw_code, raw_params = body.get("error_code"), body.get("parameters")
        code: int = raw_code if isinstance(raw_code, int) else status
        description = str(body.get("description") or self.excerpt(response, 200))
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        msg = self.redact(f"Telegram {method} failed (HTTP {status}): {description}")
        if code == 429 or "retry_after" in params:
            try:
                wait = float(params.get("retry_after", 30))
            except (TypeError, ValueError):
                wait = 30.0
            return RateLimited(msg, retry_at=utcnow() + dt.timedelta(seconds=wait), status=status)
        if "migrate_to_chat_id" in params:
            new_id = params["migrate_to_chat_id"]
            return RejectedContent(f"{msg}: the group became a supergroup, set CHAT_ID={new_id}",
                                   status=status)
        if code in (401, 404):
            return AuthError(f"{msg} (bot token invalid or revoked: get one from @BotFather)", status=status)
        if code == 403:
            return AuthError(f"{msg} (add the bot to {self.chat_id} as an admin allowed to post)",
                             status=status)
        if status == 504:
            return UnknownOutcome(msg, status=status)
        if status >= 500 or code >= 500:
            return Transient(msg, status=status)
        return RejectedContent(msg, status=status)

    # --- publishing -----------------------------------------------------------------

    def post_text(self, post: ReadyPost) -> str:
        """The plain text Telegram will show: the link is appended when missing and it fits."""
        return with_link(post.text, post.link, self.rules, post.image is not None, sep="\n")

    def _chat_value(self) -> int | str:
        return int(self.chat_id) if self.chat_id.lstrip("-").isdigit() else self.chat_id

    async def publish(self, post: ReadyPost) -> PublishResult:
        text = self.post_text(post)
        for rule in self.rules.text_rules(post.image is not None):
            if not rule.fits(text):
                what = "caption" if post.image is not None else "text"
                count = rule.count(text)
                raise RejectedContent(f"Telegram {what} is {count} UTF-16 units, over {rule.limit}")
        common: dict[str, Any] = {"parse_mode": "HTML"}
        if self._flag("DISABLE_NOTIFICATION", False):
            common["disable_notification"] = True
        if len(post.images) > 1:
            result = await self._send_album(post.images[:10], to_html(text), common)
        elif post.image is not None:
            result = await self._send_photo(post.image, to_html(text), common)
        else:
            body = {"chat_id": self._chat_value(), "text": to_html(text), **common}
            if not self._flag("LINK_PREVIEW", True):
                body["link_preview_options"] = {"is_disabled": True}
            elif post.link:
                body["link_preview_options"] = {"url": post.link}
            result = await self._call("sendMessage", json=body)
        message_id = result.get("message_id")
        if message_id is None:
            raise UnknownOutcome("Telegram answered ok without a message_id")
        raw_chat = result.get("chat")
        chat: dict[str, Any] = raw_chat if isinstance(raw_chat, dict) else {}
        return PublishResult(remote_id=str(message_id), remote_url=self.message_url(message_id, chat),
                             http_status=200)

    async def _send_photo(self, image: Media, caption: str, common: dict[str, Any]) -> dict[str, Any]:
        # Uploading works without a public media host; by URL only when asked or the file is gone.
        by_url = image.public_url and (self._flag("PHOTO_BY_URL", False) or not image.path.exists())
        if by_url:
            body = {"chat_id": self._chat_value(), "photo": image.public_url, "caption": caption, **common}
            return await self._call("sendPhoto", json=body)
        try:
            content = image.read_bytes()
        except OSError as exc:
            raise RejectedContent(f"cannot read image {image.path.name}: {exc.strerror}") from None
        data = {"chat_id": self.chat_id, "caption": caption, **{k: _form(v) for k, v in common.items()}}
        files = {"photo": (image.path.name, content, image.mime)}
        return await self._call("sendPhoto", data=data, files=files)

    async def _send_album(self, images: tuple[Media, ...], caption: str, common: dict[str, Any]) -> dict[str, Any]:
        """sendMediaGroup (2–10 photos, uploaded), the caption on the first: it shows under the album.
        The album's first message stands for the post."""
        media: list[dict[str, Any]] = []
        files: dict[str, tuple[str, bytes, str]] = {}
        for i, image in enumerate(images):
            try:
                content = image.read_bytes()
            except OSError as exc:
                raise RejectedContent(f"cannot read image {image.path.name}: {exc.strerror}") from None
            item: dict[str, Any] = {"type": "photo", "media": f"attach://photo{i}"}
            if i == 0:
                item.update(caption=caption, parse_mode=common["parse_mode"])
            media.append(item)
            files[f"photo{i}"] = (image.path.name, content, image.mime)
        data = {"chat_id": self.chat_id, "media": json.dumps(media, ensure_ascii=False),
                **{k: _form(v) for k, v in common.items() if k != "parse_mode"}}
        result = await self._call("sendMediaGroup", data=data, files=files)
        messages = result.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        return first if isinstance(first, dict) else {}

    def message_url(self, message_id: Any, chat: Mapping[str, Any]) -> str | None:
        """t.me link: public chats by username; private supergroups/channels by internal id."""
        username = chat.get("username") or (self.chat_id[1:] if self.chat_id.startswith("@") else None)
        if username:
            return f"https://t.me/{username}/{message_id}"
        chat_id = str(chat.get("id") or self.chat_id)
        if chat_id.startswith("-100"):
            return f"https://t.me/c/{chat_id[4:]}/{message_id}"
        return None  # a basic group has no message links

    async def check(self) -> str:
        me = await self._call("getMe")
        return f"@{me.get('username', '?')} (bot id {me.get('id', '?')}), posting to {self.chat_id}"


def _form(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


