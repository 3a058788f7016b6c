"""Images named by URL (``--image https://…``, a record's ``image``/``images``): downloaded once
into the media folder, then treated like a file.

Only http and https; the host must not resolve to this machine or a private network (unless
PROMO_MEDIA_ALLOW_PRIVATE_URLS), checked again on each redirect; at most PROMO_MAX_IMAGE_BYTES,
read as a stream and cut off there; the answer must say it is an image and decode as one;
20 s in all. The file is named by the hash of the URL, so the same URL is fetched only once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from scheduler.config import Settings
from scheduler.errors import ValidationError
from scheduler.media import inspect_image, touch

TIMEOUT_SECONDS = 20.0
MAX_REDIRECTS = 3
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


def is_url(value: str) -> bool:
    """Names a URL (any scheme: the others are refused by name rather than taken for a path)."""
    return bool(_SCHEME.match(value))


def _check_host(url: str, label: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{label} {url}: only http and https image URLs are downloaded")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationError(f"{label} {url}: cannot resolve {parts.hostname} ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ValidationError(f"{label} {url}: {parts.hostname} is a private or loopback address ({address}); "
                                  "set PROMO_MEDIA_ALLOW_PRIVATE_URLS=true to allow it")


def download_image(settings: Settings, url: str, label: str = "--image",
                   transport: httpx.BaseTransport | None = None) -> Path:
    """The downloaded image's file in the media folder (fetched on first use only)."""
    key = hashlib.sha256(url.encode()).hexdigest()[:24]
    for ext in _EXT.values():
        done = settings.media_dir / f"url-{key}{ext}"
        if touch(done):  # fetched before: reused, marked as used now (media pruning spares it)
            return done
    deadline = time.monotonic() + TIMEOUT_SECONDS
    data, current = b"", url
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_host(current, label, settings.media_allow_private_urls)
            try:
                with client.stream("GET", current, headers={"Accept": "image/*"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise ValidationError(f"{label} {url}: the server answered HTTP {response.status_code}")
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if not kind.startswith("image/"):
                        raise ValidationError(f"{label} {url}: not an image (content type {kind or 'missing'})")
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > settings.max_image_bytes:
                            raise ValidationError(f"{label} {url}: over the {settings.max_image_bytes:,}-byte limit "
                                                  "(PROMO_MAX_IMAGE_BYTES)")
                        if time.monotonic() > deadline:
                            raise ValidationError(f"{label} {url}: took over {TIMEOUT_SECONDS:.0f} s")
                        chunks.append(chunk)
                    data = b"".join(chunks)
                    break
            except httpx.HTTPError as exc:
                raise ValidationError(f"{label} {url}: cannot download ({type(exc).__name__})") from None
        else:
            raise ValidationError(f"{label} {url}: more than {MAX_REDIRECTS} redirects")
    mime = inspect_image(data, f"{label} {url}").mime
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    target = settings.media_dir / f"url-{key}{_EXT[mime]}"
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    touch(target)
    return target
