"""Answers shared by the Meta Graph family's cases (facebook, instagram, threads): the Graph
error shape, the rate-limit answer with its usage header, and the container-based reconcile
handlers of Instagram and Threads (which differ only in paths and field names)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


def graph_error(code: int, message: str, subcode: int | None = None, status: int = 400,
                headers: dict[str, str] | None = None) -> httpx.Response:
    error: dict[str, object] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2C3"}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


def rate_limited(account: str, code: int) -> Handler:
    """A Graph 'request limit reached' answer whose usage header says: back in 2 minutes."""
    usage = {account: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 30,
                        "estimated_time_to_regain_access": 2}]}  # minutes

    def handler(request: httpx.Request) -> httpx.Response:
        return graph_error(code, "Application request limit reached",
                           headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    return handler


def rejected(request: httpx.Request) -> httpx.Response:
    return graph_error(100, "Invalid parameter")


class ContainerReconcile:
    """Reconcile answers of a platform that publishes through a stored container: the container's
    status (``status_field``), and the account's recent posts at ``…/{account}/{list_path}``."""

    def __init__(self, account: str, container: str, found_id: str, *, status_field: str, list_path: str,
                 text_field: str):
        self.account, self.container, self.found_id = account, container, found_id
        self.status_field, self.list_path, self.text_field = status_field, list_path, text_field

    def state(self, key: str) -> dict[str, str]:
        return {f"container:{key}": self.container}

    def _handler(self, status: str | httpx.Response, recent: list[dict[str, str]] | None = None) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if request.method == "GET" and path.endswith(f"/{self.container}"):
                if isinstance(status, httpx.Response):
                    return status
                return httpx.Response(200, json={self.status_field: status, "id": self.container})
            if request.method == "GET" and path.endswith(f"/{self.account}/{self.list_path}"):
                return httpx.Response(200, json={"data": recent or []})
            return httpx.Response(400, json={"error": {"message": "Unsupported request", "code": 100}})
        return handler

    def found(self, text: str) -> Handler:
        return self._handler("PUBLISHED", [{"id": self.found_id, self.text_field: text,
                                            "timestamp": "2026-08-22T01:00:00+0000",
                                            "permalink": "https://example.invalid/p/1"}])

    def absent(self, text: str) -> Handler:
        return self._handler("FINISHED")  # made but never published: the next attempt publishes it

    def unknown(self, text: str) -> Handler:
        return self._handler(graph_error(2, "Service temporarily unavailable", status=503))
