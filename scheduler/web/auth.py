"""Who may see the dashboard: HTTP Basic against PROMO_WEB_PASSWORD, failed attempts throttled.

Every failed attempt is logged with the user name given and the client address (never the
password). After ``MAX_FAILURES`` failures from one address within ``WINDOW`` seconds that
address is answered 429 with ``Retry-After`` until the oldest of them has aged out, even
with the right password, so guessing gains nothing. A request without credentials (a
browser's first visit, before it asks for them) is not a failed attempt.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("promo.web")

MAX_FAILURES = 10
WINDOW = 300.0
#: Addresses remembered at most; beyond it the quietest are forgotten (memory stays bounded).
MAX_CLIENTS = 10_000


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


def credentials(header: str) -> Credentials | None:
    """The user and password of an ``Authorization: Basic …`` header; None when it is not one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error):
        return None
    user, sep, password = decoded.partition(":")
    return Credentials(user, password) if sep else None


class LoginThrottle:
    """Failed attempts per client address within the last ``window`` seconds of ``clock``."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW,
                 clock: Callable[[], float] = time.time, max_clients: int = MAX_CLIENTS):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = self.clock()
        failures = self._recent(client, now)
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def failed(self, client: str) -> int:
        """Count a failure; return how many ``client`` has within the window."""
        now = self.clock()
        failures = self._recent(client, now)
        if client not in self._failures and len(self._failures) >= self.max_clients:
            # Forget the address whose last failure is oldest.
            quietest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[quietest]
        failures.append(now)
        self._failures[client] = failures
        return len(failures)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class Gate:
    """The password check of every request, with its throttle and its log lines."""

    def __init__(self, password: str, throttle: LoginThrottle):
        self.password = password
        self.throttle = throttle

    def check(self, client: str, header: str | None) -> tuple[int, int | None]:
        """(200, None) when let in; (401, None) to ask for the password; (429, seconds) when throttled."""
        wait = self.throttle.retry_after(client)
        if wait is not None:
            return 429, wait
        if not header:
            return 401, None
        given = credentials(header)
        if given is not None and hmac.compare_digest(given.password.encode(),
                                                     self.password.encode()):
            self.throttle.succeeded(client)
            return 200, None
        count = self.throttle.failed(client)
        who = repr(given.user[:100]) if given is not None else "(malformed Authorization header)"
        log.warning("dashboard: wrong password for user %s from %s (%d failed in %d s)", who, client, count,
                    int(self.throttle.window))
        if count >= self.throttle.limit:
            log.warning("dashboard: %s refused for %d s after %d wrong passwords", client,
                        self.throttle.retry_after(client) or 0, count)
        return 401, None
