"""Read a multipart/form-data request body in tests (shared by the Mastodon, LinkedIn and Discord tests)."""

from __future__ import annotations

import email.parser
import email.policy

import httpx


def form_parts(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """``{field name: (file name, content type, bytes)}`` of a multipart request."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data"), content_type
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
    return parts
