"""How the service's processes run: uvloop where installed, and the child processes `promo serve`
starts and supervises (its extra dispatch workers, the web app of ``--web``): restarted with a
backoff when one dies, stopped with the service, and dying with it even when it is killed
(a kill -9 and restart never doubles them)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("promo.service")
#: A child that dies within this many seconds of its start waits twice as long as the last time
#: before the next start (1 s, 2 s, 4 s … up to :data:`MAX_BACKOFF`); one that ran longer, 1 s.
STEADY_SECONDS = 60.0
MAX_BACKOFF = 60.0


def die_with_parent(parent: int | None = None) -> None:
    """In a child process: get SIGTERM when the process that started it dies, even by SIGKILL (Linux).

    Otherwise a killed main process would leave its children running (a dispatch worker would
    publish on, a web app would hold its port), and a restart would add more. With ``parent``
    (its pid, taken before the fork), a parent that already died before this ran also stops it.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the child must be stopped by hand
        return
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop: uvloop where installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass(frozen=True)
class Child:
    """A `promo` command the service runs as a child process for as long as it runs."""

    #: What it is, in the log ("dispatch worker", "web app").
    what: str
    #: The `promo` arguments (``serve --dispatch-only …``, ``web --listen-fd …``).
    args: tuple[str, ...]
    #: File descriptors it inherits (the web app's listening socket, which the service keeps open).
    pass_fds: tuple[int, ...] = ()
    #: Added to its CPU niceness (``os.nice``): a higher value yields the cores to the service first.
    nice: int = 0
    #: Seconds it may take to stop after SIGTERM before it is killed.
    stop_seconds: float = 10.0
    #: Said in the log when it died and another is started.
    after_death: str = ""


def exit_status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        with_name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return f"signal {-returncode}" + (f" ({with_name})" if with_name else "")
    return f"status {returncode}"


def restart_delay(lived: float, last: float) -> float:
    """Seconds to wait before starting again a child that died after ``lived`` seconds, when the
    wait before its last start was ``last`` (0: none yet): 1 s, then twice the last wait while it
    keeps dying within :data:`STEADY_SECONDS`, at most :data:`MAX_BACKOFF`."""
    if lived >= STEADY_SECONDS or last <= 0:
        return 1.0
    return min(MAX_BACKOFF, last * 2)


def _in_child(parent: int, nice: int) -> None:
    die_with_parent(parent)
    if nice:
        os.nice(nice)


class Children:
    """Child processes of the service: each started once, restarted when it dies (after a backoff,
    logged), stopped with SIGTERM (then SIGKILL) when the service stops."""

    def __init__(self, specs: Sequence[Child]):
        self.specs = list(specs)
        self.procs: list[asyncio.subprocess.Process] = []
        self._started: list[float] = []
        self._backoff: list[float] = []

    async def _spawn(self, spec: Child) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", *spec.args, env=os.environ.copy(),
            stdin=asyncio.subprocess.DEVNULL, pass_fds=spec.pass_fds,
            preexec_fn=partial(_in_child, os.getpid(), spec.nice))

    async def start(self) -> None:
        for spec in self.specs:
            self.procs.append(await self._spawn(spec))
            self._started.append(time.monotonic())
            self._backoff.append(0.0)

    def pids(self, what: str) -> list[int]:
        return [p.pid for p, s in zip(self.procs, self.specs, strict=True) if s.what == what]

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart any child that dies until ``stop`` is set (then return, leaving them to :meth:`stop`)."""
        while not stop.is_set():
            waits = {asyncio.ensure_future(p.wait()): i for i, p in enumerate(self.procs)}
            stopping = asyncio.ensure_future(stop.wait())
            done, pending = await asyncio.wait([*waits, stopping], return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            for fut in done:
                if fut is stopping or stop.is_set():
                    continue
                await self._restart(waits[fut], stop)

    async def _restart(self, i: int, stop: asyncio.Event) -> None:
        spec, dead = self.specs[i], self.procs[i]
        lived = time.monotonic() - self._started[i]
        delay = self._backoff[i] = restart_delay(lived, self._backoff[i])
        log.warning("%s pid %s exited with %s after %.0f s; starting another in %.0f s%s", spec.what, dead.pid,
                    exit_status(dead.returncode), lived, delay, f" ({spec.after_death})" if spec.after_death else "")
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return  # stopping: no new one
        except TimeoutError:
            pass
        self._started[i] = time.monotonic()
        try:
            self.procs[i] = await self._spawn(spec)
        except OSError:  # no process could be started (limits): the dead one stands in, and is retried later
            log.exception("%s could not be started", spec.what)
            return
        log.warning("%s restarted: pid %s", spec.what, self.procs[i].pid)

    async def stop(self) -> None:
        """SIGTERM to each; wait for each (its ``stop_seconds``), then SIGKILL."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc, spec in zip(self.procs, self.specs, strict=True):
            try:
                await asyncio.wait_for(proc.wait(), timeout=spec.stop_seconds)
            except TimeoutError:
                proc.kill()
                await proc.wait()
