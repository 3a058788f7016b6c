"""AT Protocol helpers for the Bluesky adapter: record keys, rich-text facets, image sizes.

Pure functions, no HTTP, so they are easy to test on their own:

* :func:`tid_for` derives a valid TID record key from a post's creation time and
  idempotency key, so the key is known (and stable) before ``createRecord`` is called.
* :func:`facets_for` finds links and hashtags and gives their **UTF-8 byte** offsets,
  which is what ``app.bsky.richtext.facet`` counts in (not Python str indexes).
* :func:`post_record` builds the post record (facets plus one embed: link card or image).
* :func:`image_dimensions` reads width/height from PNG, JPEG or WebP headers for the
  optional ``aspectRatio`` of an image embed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from typing import Any

import httpx
import regex

from scheduler.platforms.base import ReadyPost
from scheduler.textrules import graphemes, hashtag_spans, url_spans

#: The base32-sortable alphabet of TIDs (sorts the same as the numbers it encodes).
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_PATTERN = regex.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TAG_MAX_GRAPHEMES, _TAG_MAX_BYTES = 64, 640


def tid_for(created_at: dt.datetime, key: str) -> str:
    """A TID: 1 zero bit, 53 bits of microseconds since 1970, 10 bits of clock id.

    The clock id comes from ``key`` (the post's idempotency key), so two posts created in
    the same microsecond still get different keys, and the same post always gets the same.
    """
    when = created_at if created_at.tzinfo else created_at.replace(tzinfo=dt.UTC)
    micros = (when - _EPOCH) // dt.timedelta(microseconds=1)
    if not 0 <= micros < 1 << 53:
        raise ValueError(f"created_at {created_at!r} is outside the TID range")
    clock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") & 0x3FF
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _byte_offsets(text: str, start: int, end: int) -> dict[str, int]:
    # Facet indexes are byte offsets into the UTF-8 text, end exclusive.
    byte_start = len(text[:start].encode("utf-8"))
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode("utf-8"))}


def facets_for(text: str) -> list[dict[str, Any]]:
    """Link and hashtag facets for ``text`` (Bluesky detects nothing server-side)."""
    facets: list[dict[str, Any]] = []
    links = url_spans(text)
    for start, end, url in links:
        facets.append({"index": _byte_offsets(text, start, end),
                       "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}]})
    for start, end, tag in hashtag_spans(text):
        if any(s < end and start < e for s, e, _ in links):
            continue  # a "#fragment" inside a URL is part of the link, not a tag
        if tag.isdigit() or graphemes(tag) > _TAG_MAX_GRAPHEMES or len(tag.encode()) > _TAG_MAX_BYTES:
            continue  # Bluesky's own apps do not tag pure numbers; the lexicon caps tag length
        facets.append({"index": _byte_offsets(text, start, end),
                       "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
    facets.sort(key=lambda f: f["index"]["byteStart"])
    return facets


def jwt_expiry(token: str) -> dt.datetime | None:
    """The ``exp`` claim of a JWT, read without verifying it (only to refresh early)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def error_name(response: httpx.Response) -> tuple[str, str]:
    """The ``error`` and ``message`` of an XRPC error body (empty strings when absent)."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")


def post_record(post: ReadyPost, image: dict[str, Any] | None, langs: list[str]) -> dict[str, Any]:
    """The ``app.bsky.feed.post`` record for ``post``; ``image`` holds its uploaded ``blob``/``size``."""
    # createdAt is the publish time: feeds sort by it, and a post is composed long before.
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": post.text, "createdAt": now}
    if langs:
        record["langs"] = langs[:3]
    if facets := facets_for(post.text):
        record["facets"] = facets
    if post.link:  # a post has one embed: a link card, with the image as its thumb
        external = {"uri": post.link, "title": post.title or "", "description": post.description or ""}
        if image:
            external["thumb"] = image["blob"]
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
    elif image and post.image:
        entry: dict[str, Any] = {"image": image["blob"], "alt": post.image.alt_text or ""}
        if image["size"]:
            entry["aspectRatio"] = {"width": image["size"][0], "height": image["size"][1]}
        record["embed"] = {"$type": "app.bsky.embed.images", "images": [entry]}
    return record


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG or WebP image, or None when the header is not understood."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_dimensions(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_dimensions(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None
