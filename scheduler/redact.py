"""Keep secret values out of logs, error messages and history rows.

Every secret the service knows (tokens from the configuration, tokens it refreshed) is
registered here; :func:`redact` replaces each with ``***``. Patterns catch the shapes a
secret takes in URLs even when it was never registered (a Telegram bot token in a path,
an ``access_token`` query parameter, a bearer header).
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_MIN_LEN = 6  # shorter values (e.g. "1", "true") would redact ordinary words
#: Registered secrets by their last _MIN_LEN characters, so a text is scanned once whatever
#: the number of secrets. (The end, not the start: thousands of channels' webhook URLs share
#: their start, while their ends, and random tokens anywhere, differ.)
_by_end: dict[str, list[str]] = {}

_PATTERNS = [
    (re.compile(r"(/bot)\d+:[A-Za-z0-9_-]{10,}"), r"\1***"),
    (re.compile(r"(?<![A-Za-z_])((?:access_token|token|api_key|key|secret|password|client_secret|refresh_token)=)"
                r"[^&\s\"']+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1***"),
    (re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_-]{10,}"), r"\1***"),
]


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it from now on."""
    if value and len(value) >= _MIN_LEN:
        with _lock:
            bucket = _by_end.setdefault(value[-_MIN_LEN:], [])
            if value not in bucket:
                bucket.append(value)


def registered_secrets() -> list[str]:
    """Every secret registered so far (for tests that must leave the registry as they found it)."""
    with _lock:
        return [secret for bucket in _by_end.values() for secret in bucket]


def forget_secrets() -> None:
    """Empty the registry (tests only: a running service never forgets a secret)."""
    with _lock:
        _by_end.clear()


def redact(text: str | None) -> str:
    """``text`` with every registered secret and secret-shaped URL part replaced by ``***``."""
    if not text:
        return text or ""
    spans: list[tuple[int, int]] = []
    index = _by_end
    for end in range(_MIN_LEN, len(text) + 1):
        bucket = index.get(text[end - _MIN_LEN:end])
        if bucket:
            for secret in bucket:
                if text.endswith(secret, 0, end):
                    spans.append((end - len(secret), end))
    if spans:
        # Overlapping secrets are masked as one span, so no part of either shows.
        spans.sort()
        merged = [list(spans[0])]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out, last = [], 0
        for start, end in merged:
            out.append(text[last:start])
            out.append("***")
            last = end
        out.append(text[last:])
        text = "".join(out)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the final message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to logging to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = redact(str(exc))
            if text != str(exc):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} ({type(exc).__name__}: {text})"
        return True


_REDACTOR = RedactingFilter()
_factory_installed = False


def install_record_redaction() -> None:
    """Redact every log record when it is created, whatever logger or handler it goes to.

    (A filter on a handler misses handlers added later, such as a test's capture; a filter
    on a logger misses records of its child loggers, such as httpx's request lines.)
    """
    global _factory_installed  # noqa: PLW0603 -- once per process: a second factory would redact twice
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _REDACTOR.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
