"""A strict Mastodon server for tests: a real HTTP server on 127.0.0.1 speaking the documented
API (docs.joinmastodon.org, 4.x) and refusing whatever a real server would refuse, plus what a
fitted copy must never be.

- ``GET /api/v2/instance``: ``configuration.statuses`` (max_characters, max_media_attachments)
  and ``configuration.media_attachments`` (supported_mime_types, image_size_limit,
  image_matrix_limit, description_limit), set per test.
- ``GET /.well-known/nodeinfo`` and ``/nodeinfo/2.0``: the software is Mastodon.
- ``GET /api/v1/accounts/verify_credentials``: the account of the token.
- ``POST /api/v2/media`` (multipart/form-data): only the documented fields ``file`` (required,
  once, with a file name and type), ``thumbnail``, ``description`` (at most description_limit
  characters) and ``focus``; the file's declared type must be a supported one and be what the
  bytes are (decoded with Pillow); over image_size_limit bytes is a 422 as on Mastodon; over
  image_matrix_limit pixels is a 422 too (Mastodon would shrink it itself: a client that fits its
  copies never sends one). Answered 200 with the MediaAttachment (processed at once).
- ``POST /api/v1/statuses`` (JSON): only the documented fields; ``status`` within max_characters;
  ``media_ids`` strings, at most max_media_attachments, each uploaded with this token and not yet
  attached to a status; an ``Idempotency-Key`` header. Answered 200 with the Status, its
  ``media_attachments`` in the order of ``media_ids``.

Every request needs ``Authorization: Bearer <token>`` (401 otherwise); any other request is a
404 and recorded in ``unexpected``. ``uploads`` and ``statuses`` keep what was accepted, in order.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, UnidentifiedImageError

from tests.helpers import send_json

MEDIA_FIELDS = {"file", "thumbnail", "description", "focus"}
STATUS_FIELDS = {"status", "media_ids", "poll", "in_reply_to_id", "sensitive", "spoiler_text", "visibility",
                 "language", "scheduled_at"}
VISIBILITIES = {"public", "unlisted", "private", "direct"}
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass
class Upload:
    id: str
    filename: str
    mime: str
    data: bytes
    width: int
    height: int
    description: str | None
    attached_to: str | None = None


@dataclass
class StrictMastodon:
    token: str
    max_characters: int = 500
    max_media_attachments: int = 4
    image_size_limit: int = 16 * 1024 * 1024
    image_matrix_limit: int = 33_177_600
    description_limit: int = 1500
    supported_mime_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/heic",
                                             "image/avif")
    uploads: list[Upload] = field(default_factory=list)
    statuses: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)  # (body, Idempotency-Key)
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # (path, status, error)
    unexpected: list[str] = field(default_factory=list)
    base_url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> StrictMastodon:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._answer(self, "GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake._answer(self, "POST", body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- the API ----------------------------------------------------------------------------

    def instance(self) -> dict[str, Any]:
        return {"domain": "127.0.0.1", "title": "Kota", "version": "4.3.1", "configuration": {
            "statuses": {"max_characters": self.max_characters, "max_media_attachments": self.max_media_attachments,
                         "characters_reserved_per_url": 23},
            "media_attachments": {"supported_mime_types": list(self.supported_mime_types),
                                  "image_size_limit": self.image_size_limit,
                                  "image_matrix_limit": self.image_matrix_limit,
                                  "description_limit": self.description_limit,
                                  "video_size_limit": 103_809_024, "video_matrix_limit": 8_294_400}}}

    def _answer(self, h: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        path = h.path.split("?")[0]
        if (method, path) == ("GET", "/.well-known/nodeinfo"):
            return send_json(h, 200, {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                                             "href": f"{self.base_url}/nodeinfo/2.0"}]})
        if (method, path) == ("GET", "/nodeinfo/2.0"):
            return send_json(h, 200, {"version": "2.0", "software": {"name": "mastodon", "version": "4.3.1"}})
        if (method, path) == ("GET", "/api/v2/instance"):
            return send_json(h, 200, self.instance())
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return send_json(h, 401, {"error": "The access token is invalid"})
        if (method, path) == ("GET", "/api/v1/accounts/verify_credentials"):
            return send_json(h, 200, {"id": "109000000000000001", "username": "humas_kota", "acct": "humas_kota"})
        with self._lock:
            try:
                if (method, path) == ("POST", "/api/v2/media"):
                    return send_json(h, 200, self._media(h.headers.get("Content-Type") or "", body))
                if (method, path) == ("POST", "/api/v1/statuses"):
                    return send_json(h, 200, self._status(h.headers.get("Content-Type") or "", body,
                                                       h.headers.get("Idempotency-Key")))
            except Refused as exc:
                self.refused.append((path, exc.status, exc.error))
                return send_json(h, exc.status, {"error": exc.error})
        self.unexpected.append(f"{method} {h.path}")
        return send_json(h, 404, {"error": "Record not found"})

    def _media(self, content_type: str, body: bytes) -> dict[str, Any]:
        parts = _form(content_type, body)
        names = [name for name, *_ in parts]
        if unknown := set(names) - MEDIA_FIELDS:
            raise Refused(422, f"Validation failed: unknown parameter {sorted(unknown)}")
        if names.count("file") != 1 or len(names) != len(set(names)):
            raise Refused(422, f"Validation failed: one file and each field once ({names})")
        fields = {name: (filename, kind, data) for name, filename, kind, data in parts}
        filename, kind, data = fields["file"]
        if not filename:
            raise Refused(422, "Validation failed: File has no file name")
        if kind not in self.supported_mime_types:
            raise Refused(422, f"Validation failed: File has contents that are not what they are reported to be ({kind})")
        if len(data) > self.image_size_limit:
            raise Refused(422, f"Validation failed: File file size must be less than {self.image_size_limit} bytes")
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise Refused(422, f"Validation failed: File could not be processed ({exc})") from None
        if FORMATS.get(str(img.format)) != kind:
            raise Refused(422, f"Validation failed: File is {img.format}, reported as {kind}")
        if img.width * img.height > self.image_matrix_limit:
            raise Refused(422, f"{img.width}×{img.height} is over image_matrix_limit {self.image_matrix_limit}")
        description = fields["description"][2].decode() if "description" in fields else None
        if description is not None and len(description) > self.description_limit:
            raise Refused(422, f"Validation failed: Description is too long (maximum is {self.description_limit})")
        upload = Upload(str(22348641 + len(self.uploads)), filename, kind, data, img.width, img.height, description)
        self.uploads.append(upload)
        return _attachment(self.base_url, upload)

    def _status(self, content_type: str, body: bytes, key: str | None) -> dict[str, Any]:
        if not content_type.startswith("application/json"):
            raise Refused(422, f"strict fake: the adapter sends JSON, got {content_type}")
        data = json.loads(body)
        if unknown := set(data) - STATUS_FIELDS:
            raise Refused(422, f"Validation failed: unknown parameter {sorted(unknown)}")
        text, ids = data.get("status") or "", data.get("media_ids") or []
        if not text and not ids:
            raise Refused(422, "Validation failed: Text can't be blank")
        if len(text) > self.max_characters:
            raise Refused(422, f"Validation failed: Text character limit of {self.max_characters} exceeded")
        if data.get("visibility", "public") not in VISIBILITIES:
            raise Refused(422, f"Validation failed: Visibility is not included in the list ({data['visibility']})")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise Refused(422, "strict fake: media_ids must be a list of strings")
        if len(ids) > self.max_media_attachments:
            raise Refused(422, "Validation failed: Media attachments too many")
        by_id = {u.id: u for u in self.uploads}
        if any(i not in by_id or by_id[i].attached_to is not None for i in ids) or len(set(ids)) != len(ids):
            raise Refused(422, "Validation failed: Media ids not found or already attached")
        status_id = str(110000000000000001 + len(self.statuses))
        for i in ids:
            by_id[i].attached_to = status_id
        self.statuses.append((data, key))
        return {"id": status_id, "created_at": "2026-08-22T01:00:00.000Z", "visibility": data.get("visibility", "public"),
                "url": f"{self.base_url}/@humas_kota/{status_id}", "uri": f"{self.base_url}/users/humas_kota/statuses/{status_id}",
                "content": f"<p>{text}</p>", "card": None,
                "media_attachments": [_attachment(self.base_url, by_id[i]) for i in ids]}


class Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _attachment(base_url: str, u: Upload) -> dict[str, Any]:
    return {"id": u.id, "type": "image", "url": f"{base_url}/system/media/{u.id}/original/{u.filename}",
            "preview_url": f"{base_url}/system/media/{u.id}/small/{u.filename}", "remote_url": None,
            "description": u.description, "blurhash": "UFBWY:8_0Jx]",
            "meta": {"original": {"width": u.width, "height": u.height, "size": f"{u.width}x{u.height}",
                                  "aspect": u.width / u.height}}}


def _form(content_type: str, body: bytes) -> list[tuple[str, str | None, str, bytes]]:
    """``(field name, file name, content type, bytes)`` of each part of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise Refused(422, f"strict fake: media must be multipart/form-data, got {content_type}")
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    return [(str(part.get_param("name", header="content-disposition")), part.get_filename(),
             part.get_content_type(), part.get_payload(decode=True) or b"") for part in message.iter_parts()]
