"""AT Protocol helpers for the Bluesky adapter: record keys, rich-text facets, post records.

Pure functions, no HTTP, so they are easy to test on their own:

* :func:`tid_for` derives a valid TID record key from a post's creation time and
  idempotency key, so the key is known (and stable) before ``createRecord`` is called.
* :func:`facets_for` finds links and hashtags and gives their **UTF-8 byte** offsets,
  which is what ``app.bsky.richtext.facet`` counts in (not Python str indexes).
* :func:`post_record` builds the post record (facets plus one embed: link card or image).

Images are read (type, displayed size for ``aspectRatio``) and stripped of EXIF by
:mod:`scheduler.media`, with Pillow.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

import regex

from scheduler.platforms.base import ReadyPost
from scheduler.textrules import graphemes, hashtag_spans, url_spans

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

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


def post_record(post: ReadyPost, images: list[dict[str, Any]], langs: list[str]) -> dict[str, Any]:
    """The ``app.bsky.feed.post`` record for ``post``; ``images`` hold each uploaded ``blob``,
    ``size`` and ``alt``, the cover first."""
    # createdAt is the publish time: feeds sort by it, and a post is composed long before.
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": post.text, "createdAt": now}
    if langs:
        record["langs"] = langs[:3]
    if facets := facets_for(post.text):
        record["facets"] = facets
    if post.link:  # a post has one embed: a link card, with the cover as its thumb
        external = {"uri": post.link, "title": post.title or "", "description": post.description or ""}
        if images:
            external["thumb"] = images[0]["blob"]
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
    elif images:
        entries = []
        for image in images[:4]:  # app.bsky.embed.images takes up to 4
            entry: dict[str, Any] = {"image": image["blob"], "alt": image.get("alt") or ""}
            if image["size"]:
                entry["aspectRatio"] = {"width": image["size"][0], "height": image["size"][1]}
            entries.append(entry)
        record["embed"] = {"$type": "app.bsky.embed.images", "images": entries}
    return record
