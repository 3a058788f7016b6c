"""Helpers for tests that run several `promo serve` processes on one PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def process_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` for a `promo` subprocess: PATH, the checkout importable, no .env file read."""
    return {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
            "PROMO_ENV_FILE": str(tmp_path / "none.env")}


def serve(env: dict[str, str], cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start `promo serve` (no health port) writing its log to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--health-port", "0"], env=env,
                            cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def promo(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)
