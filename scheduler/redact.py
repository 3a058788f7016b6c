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
_secrets: set[str] = set()
_MIN_LEN = 6  # shorter values (e.g. "1", "true") would redact ordinary words

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
            _secrets.add(value)


def redact(text: str | None) -> str:
    """``text`` with every registered secret and secret-shaped URL part replaced by ``***``."""
    if not text:
        return text or ""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
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
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)  # type: ignore[arg-type]
        _REDACTOR.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def install_logging_filter() -> None:
    """Redact every record at creation, and attach the filter to the root handlers too."""
    install_record_redaction()
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
