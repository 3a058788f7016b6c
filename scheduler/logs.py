"""How `promo serve` and `promo web` log: one line per record for a terminal, or one JSON object
per line for log shippers (PROMO_LOG_FORMAT=json); every record redacted when it is created."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from scheduler.redact import install_record_redaction, redact


class JsonFormatter(logging.Formatter):
    """PROMO_LOG_FORMAT=json: one JSON object per line (time, level, logger, message, and the
    traceback if any), secrets masked, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": redact(record.getMessage())}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # the redaction may already have rendered (and masked) it
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, fmt: str = "text") -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else
                             logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install_record_redaction()
