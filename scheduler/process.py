"""How the service's processes run: uvloop where installed, and dispatch workers that die with
the process that started them (a kill -9 and restart never doubles them)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def die_with_parent() -> None:
    """In a dispatch worker: get SIGTERM when the main process dies, even by SIGKILL (Linux).

    Otherwise a killed main process would leave its worker running, and a restart would add
    another; the worker's in-flight leases are then resolved like any crash.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the worker must be stopped by hand
        pass


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop: uvloop where installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)
