"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import httpx

H = TypeVar("H", bound=Hashable)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Recorder:
    """A MockTransport handler answering from (method, path) → response rules, recording requests.

    A rule is a response, a callable taking the request, or a list of those used in turn.
    """

    def __init__(self, routes: dict[tuple[str, str], Any]):
        self.routes = routes
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(answer, list):
            answer = answer.pop(0)
        return answer(request) if callable(answer) else answer


def between_repeats_all_others_appear(seq: list[H], universe: set[H]) -> bool:
    """No item appears a second time before every other item of ``universe`` appeared since."""
    seen_since: dict[H, set[H]] = {}
    for x in seq:
        if x in seen_since and seen_since[x] != universe - {x}:
            return False
        for other in seen_since:
            if other != x:
                seen_since[other].add(x)
        seen_since[x] = set()
    return True
