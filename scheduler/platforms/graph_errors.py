"""The Meta Graph family's error answers, mapped to the typed errors in one place.

Facebook Pages, Instagram and Threads share the error format (``{"error": {"code",
"error_subcode", …}}``, mostly HTTP 400 even for throttling) and the usage headers
(``X-Business-Use-Case-Usage`` and friends, whose ``estimated_time_to_regain_access`` is in
minutes). :func:`graph_error` turns an answer into the right error with the exact retry time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from scheduler.errors import (
    AuthError,
    Duplicate,
    PublishError,
    RateLimited,
    RejectedContent,
    Transient,
    UnknownOutcome,
)
from scheduler.platforms.base import Adapter, utcnow

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

THROTTLE_CODES = {4, 17, 32, 341, 613}  # app, user, page, app-limit, custom
AUTH_CODES = {102, 190}
AUTH_SUBCODES = {33, 458, 459, 460, 463, 464, 467}
#: Configuration rather than content: Page Publishing Authorization, restricted IG user.
ACCOUNT_SUBCODES = {1404078, 2207050}
DUPLICATE_SUBCODES = {1366051}
#: Meta asks to retry the same request (server error, download timeout, not ready yet…).
RETRY_SUBCODES = {1363047, 1609010, 2207001, 2207003, 2207027, 2207032, 2207052}
#: The Instagram container is gone or expired: retry with a new one.
RECREATE_SUBCODES = {2207006, 2207008, 2207020}
REJECT_CODES = {100, 36000, 36003}
REJECT_SUBCODES = {1346003, 1366046, 1404102, 1609005, 2207004, 2207005, 2207009, 2207010, 2207023, 2207051}
RATE_SUBCODES = {1390008, 2207042}  # posting too fast; Instagram's 24 h publishing cap

THROTTLE_WAIT = dt.timedelta(minutes=15)  # no header said how long: Meta's windows roll hourly
LONG_WAIT = dt.timedelta(hours=1)  # 24 h publishing caps, policy blocks (368)


class ContainerGone(Transient):
    """The media container expired or vanished; a retry builds a new one."""


def regain_minutes(headers: httpx.Headers) -> float | None:
    """The largest ``estimated_time_to_regain_access`` (minutes) in the usage headers."""
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "estimated_time_to_regain_access" and isinstance(value, int | float | str):
                    with contextlib.suppress(ValueError):
                        found.append(float(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for name in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = headers.get(name)
        if raw:
            try:
                walk(json.loads(raw))
            except ValueError:
                continue
    return max(found) if found else None


def retry_at_from_usage(headers: httpx.Headers, default: dt.timedelta = THROTTLE_WAIT) -> dt.datetime:
    minutes = regain_minutes(headers)
    if minutes is not None and minutes > 0:
        return utcnow() + dt.timedelta(minutes=minutes)
    return utcnow() + default


def error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def graph_error(adapter: Adapter, response: httpx.Response, what: str) -> PublishError:
    """Map a Graph error answer (any status) to the typed error the dispatcher acts on."""
    err = error_body(response)
    if err is None:
        return adapter.generic_error(response, what)
    status = response.status_code
    code, sub = _int(err.get("code")), _int(err.get("error_subcode"))
    text = str(err.get("error_user_msg") or err.get("message") or "")
    msg = adapter.redact(
        f"{adapter.platform} {what} failed (HTTP {status}, code {code}"
        + (f"/{sub}" if sub else "") + f"): {text}"
        + (f" [fbtrace_id {err['fbtrace_id']}]" if err.get("fbtrace_id") else "")
    )
    if code == 506 or sub in DUPLICATE_SUBCODES:
        return Duplicate(msg, status=status)
    if sub in RECREATE_SUBCODES:
        return ContainerGone(msg, status=status)
    if sub in RETRY_SUBCODES or code == 9007:
        return Transient(msg, status=status)
    if sub in ACCOUNT_SUBCODES:
        return AuthError(msg, status=status)
    if sub in REJECT_SUBCODES or "LINK_LIMIT_EXCEEDED" in text:
        return RejectedContent(msg, status=status)
    if code in THROTTLE_CODES or 80000 <= code < 80100 or sub in RATE_SUBCODES:
        wait = LONG_WAIT if sub == 2207042 else THROTTLE_WAIT
        return RateLimited(msg, retry_at=retry_at_from_usage(response.headers, wait), status=status)
    if code == 368:
        return RateLimited(msg, retry_at=retry_at_from_usage(response.headers, LONG_WAIT), status=status)
    if code in AUTH_CODES or sub in AUTH_SUBCODES or code == 10 or 200 <= code < 300:
        return AuthError(msg, status=status)
    if "Error validating access token" in text or "REVOKED_ACCESS_TOKEN" in text:
        return AuthError(msg, status=status)
    if code in REJECT_CODES:
        return RejectedContent(msg, status=status)
    if status == 504:
        return UnknownOutcome(msg, status=status)
    if code in (1, 2) or err.get("is_transient") is True or status >= 500:
        return Transient(msg, status=status)
    if status in (401, 403):
        return AuthError(msg, status=status)
    return RejectedContent(msg, status=status)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_time(value: str | None) -> dt.datetime | None:
    """Graph timestamps (``2024-05-01T10:00:00+0000``) and our own ISO strings."""
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return dt.datetime.strptime(value, fmt).astimezone(dt.UTC)
        except ValueError:
            continue
    return None


def same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()) == " ".join((b or "").split())


