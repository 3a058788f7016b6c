"""A scripted Graph API for the facebook, instagram and threads adapter tests.

Routes map ``(method, path)`` to an answer or a list of answers (served in turn, the last
one repeating); every request is recorded with its query and decoded form/multipart body.
"""

from __future__ import annotations

import email.parser
import email.policy
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from scheduler.platforms import adapter_class
from scheduler.platforms.base import Adapter, ChannelContext, MemoryState

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


def graph_error(code: int, message: str = "error", subcode: int | None = None, status: int = 400,
                headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    """A Graph error answer as Meta documents it."""
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                           "fbtrace_id": "AbCdEfGh123", **extra}
    if subcode is not None:
        err["error_subcode"] = subcode
    return httpx.Response(status, json={"error": err}, headers=headers)


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    files: dict[str, tuple[str | None, str, bytes]]
    headers: httpx.Headers
    raw_url: str

    @property
    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header, if any."""
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None


@dataclass
class FakeGraph:
    routes: dict[tuple[str, str], Answer | list[Answer]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    on_request: Callable[[Sent], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = decode(request)
        self.sent.append(sent)
        if self.on_request:
            self.on_request(sent)
        key = (request.method, request.url.path)
        if key not in self.routes:
            raise AssertionError(f"unexpected request {request.method} {request.url.path}")
        answer = self.routes[key]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def calls(self, method: str | None = None, path: str | None = None) -> list[Sent]:
        return [s for s in self.sent if (method is None or s.method == method) and (path is None or s.path == path)]


def decode(request: httpx.Request) -> Sent:
    body = request.read()
    ctype = request.headers.get("content-type", "")
    form: dict[str, str] = {}
    files: dict[str, tuple[str | None, str, bytes]] = {}
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    elif ctype.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = (filename, part.get_content_type(), payload)
            else:
                form[str(name)] = payload.decode()
    return Sent(request.method, request.url.path, dict(request.url.params), form, files, request.headers,
                str(request.url))


def make_adapter(platform: str, options: dict[str, str], fake: Any,
                 state: dict[str, str] | None = None) -> tuple[Adapter, MemoryState]:
    memory = MemoryState(state)
    ctx = ChannelContext(name=f"test_{platform}", options=options, state=memory)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return adapter_class(platform)(ctx, client), memory
