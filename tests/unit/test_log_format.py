"""PROMO_LOG_FORMAT=json: each log line of the service is one JSON object, secrets masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scheduler.config import load_settings
from scheduler.errors import ConfigError

SECRET = "sk_live_9f8e7d6c5b4a39281706"

SCRIPT = f"""
import logging
from scheduler import redact
from scheduler.logs import setup_logging
redact.register_secret({SECRET!r})
setup_logging("INFO", {{fmt!r}})
log = logging.getLogger("promo.test")
log.warning("token %s refused", {SECRET!r})
try:
    raise RuntimeError("boom with {SECRET}")
except RuntimeError:
    log.exception("publish failed")
try:
    raise ValueError("plain")
except ValueError:
    log.exception("parse failed")
"""


def run(fmt: str) -> str:
    res = subprocess.run([sys.executable, "-c", SCRIPT.format(fmt=fmt)], capture_output=True, text=True,
                         timeout=60, env={"PATH": os.environ.get("PATH", "/usr/bin")})
    assert res.returncode == 0, res.stderr
    return res.stderr


def test_json_log_lines_parse_and_mask_secrets() -> None:
    err = run("json")
    assert SECRET not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) == 3  # each traceback stays inside its record
    first, second = lines[:2]
    assert (first["level"], first["logger"]) == ("WARNING", "promo.test")
    assert first["message"].startswith("token ") and first["message"].endswith(" refused")
    assert first["time"].endswith("+00:00")
    # a traceback quoting a secret is folded into the (masked) message; others come as "exception"
    assert second["message"].startswith("publish failed") and "RuntimeError" in second["message"]
    assert "exception" in lines[2] and "ValueError: plain" in lines[2]["exception"]


def test_text_stays_the_default_and_a_typo_is_refused() -> None:
    err = run("text")
    assert SECRET not in err and "WARNING promo.test: token" in err
    assert load_settings({}).log_format == "text"
    assert load_settings({"PROMO_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="PROMO_LOG_FORMAT: 'xml' is not text or json"):
        load_settings({"PROMO_LOG_FORMAT": "xml"})
