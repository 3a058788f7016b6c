"""CPU accounting for the burst matrix: who used the machine's cores during a run, and the
best speed-up those cores allow.

On a small machine the dispatcher processes, the PostgreSQL server and the fake platform
share the same cores. Their CPU seconds during a run, divided by the number of cores, are
the shortest wall time that work could take even if the cores were perfectly shared (the
run's *CPU bound*); a run can be no faster than that, nor than the floor (the fastest plain
client). :func:`ceiling` turns that into the most a run with more processes can gain over
one process on this machine, and how much of it the run got.

Everything is read from ``/proc`` (Linux); where it cannot be read the figures are ``None``
and printed as "n/a", never as 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PROC = Path("/proc")


class Run(Protocol):
    """What a dispatcher run measured (:class:`bench.burst.PartResult`), in seconds."""

    name: str
    cpu_seconds: float  # the dispatch processes, from T
    fake_cpu_seconds: float
    db_cpu_seconds: float | None  # the local PostgreSQL server; None: SQLite or unreadable
    box_cpu_seconds: float | None  # every process on the machine but the bench's; None: unreadable

    @property
    def total(self) -> float: ...


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat_fields(text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat line after ``(comm)``: state is [0], utime [11]."""
    return text.rsplit(")", 1)[1].split()


def pid_cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = _stat_fields((proc / str(pid) / "stat").read_text())
    return (int(fields[11]) + int(fields[12])) / _ticks()


def processes_cpu_seconds(name: str = "postgres", proc: Path = PROC) -> float | None:
    """CPU seconds used so far by every process named ``name`` (its ``comm``, or a command line
    starting with it), their reaped children included; ``None`` where ``/proc`` cannot be read
    or no such process runs (a server on another machine: its CPU is not ours to count).

    Sum utime + stime + cutime + cstime of ``/proc/<pid>/stat`` for each match. The children's
    times matter for PostgreSQL: a backend that starts and ends between two readings (a
    connection of the run's pool) is in neither reading's live processes, but once the
    postmaster has reaped it its CPU is in the postmaster's cutime/cstime. So the difference
    of two readings is the server's CPU between them, as long as the postmaster itself runs on.
    """
    try:
        entries = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    total, found = 0, False
    for entry in entries:
        try:  # a process may end between the listing and the reads
            if (entry / "comm").read_text().strip() != name:
                cmdline = (entry / "cmdline").read_bytes()
                if not cmdline.startswith(name.encode()):
                    continue
            fields = _stat_fields((entry / "stat").read_text())
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        found = True
    return total / _ticks() if found else None


def postgres_cpu_seconds(proc: Path = PROC) -> float | None:
    """CPU seconds the local PostgreSQL server (postmaster, backends, its workers) has used so
    far; ``None`` where it cannot be read. See :func:`processes_cpu_seconds`."""
    return processes_cpu_seconds("postgres", proc)


def box_busy_seconds(exclude: int | None = None, proc: Path = PROC) -> float | None:
    """CPU seconds every core of the machine has spent busy so far (all processes, the kernel's
    interrupts included; idle and I/O wait not), from the first line of ``/proc/stat``; less the
    CPU of process ``exclude`` (the benchmark's own parent, waiting on the part)."""
    try:
        fields = (proc / "stat").read_text().split("\n", 1)[0].split()
        excluded = pid_cpu_seconds(exclude, proc) if exclude else 0.0
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _ticks() - excluded


def delta(before: float | None, after: float | None) -> float | None:
    """``after - before``, or ``None`` when either reading failed."""
    return None if before is None or after is None else after - before


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class Ceiling:
    """The best speed-up of a run with N processes over the one-process run this machine allows.

    ``one``: the one-process run's total time; ``run``: the N-process run's; ``floor``: the
    fastest plain client's; ``cpu``: CPU seconds of the N-process run's dispatcher processes,
    database server and fake platform; ``cores``: the machine's cores.
    """

    one: float
    run: float
    floor: float
    cpu: float
    cores: int

    @property
    def bound(self) -> float:
        """The shortest time the cores could have done the run's work in, perfectly shared."""
        return self.cpu / self.cores

    @property
    def busy(self) -> float:
        """The share of the cores that work kept busy over the run's wall time."""
        return self.bound / self.run if self.run > 0 else 0.0

    @property
    def limit(self) -> float:
        """The fastest the run could have been here: no faster than the floor nor its CPU bound."""
        return max(self.floor, self.bound)

    @property
    def speedup(self) -> float:
        return self.one / self.run

    @property
    def best(self) -> float:
        """The ceiling: the speed-up the run would show had it finished at :attr:`limit`."""
        return self.one / self.limit

    @property
    def share(self) -> float:
        """The measured speed-up as a fraction of the ceiling."""
        return self.speedup / self.best

    def line(self, label: str) -> str:
        return (f"{label}: {self.speedup:.2f}x over x1; this machine's ceiling for that work {self.best:.2f}x "
                f"(floor {self.floor:.2f} s, CPU bound {self.bound:.2f} s: {self.cores} cores busy "
                f"{100 * self.busy:.0f}%) → {100 * self.share:.0f}% of the ceiling")


def work_cpu(run: Run) -> float:
    """CPU seconds of a dispatcher run's work: its dispatch processes, the database server, the fake."""
    return run.cpu_seconds + (run.db_cpu_seconds or 0.0) + run.fake_cpu_seconds


def ceiling(one: Run, run: Run, floor: float, cores: int) -> Ceiling:
    """The best speed-up ``run`` could show over ``one`` (one process) on ``cores`` cores, given the
    ``floor`` (the fastest plain client's total time)."""
    return Ceiling(one=one.total, run=run.total, floor=floor, cpu=work_cpu(run), cores=cores)


def cpu_table(runs: Sequence[Run], cores: int) -> list[str]:
    """CPU seconds from T until all published, per dispatcher run: the dispatch processes, the
    PostgreSQL server, the fake platform, every other process on the machine (busy minus those
    three), the CPU bound (the first three / cores) and the share of the cores it kept busy."""
    lines = [f"CPU seconds from T {'dispatcher':>11} {'PostgreSQL':>11} {'fake':>6} {'others':>7} "
             f"{'CPU bound':>10} {'cores busy':>11}"]
    for r in runs:
        work = work_cpu(r)
        others = None if r.box_cpu_seconds is None else max(0.0, r.box_cpu_seconds - work)
        bound = work / cores
        lines.append(f"{r.name:<18} {r.cpu_seconds:>11.2f} {seconds(r.db_cpu_seconds):>11} "
                     f"{r.fake_cpu_seconds:>6.2f} {seconds(others):>7} {bound:>9.2f}s "
                     f"{100 * bound / r.total if r.total > 0 else 0:>10.0f}%")
    return lines


def others_note(runs: Sequence[Run], cores: int) -> str | None:
    """A warning when other processes on the machine used more than 5% of the cores during the
    runs: the ceilings assume the cores were the run's alone, so they are then too high."""
    others = [(r, r.box_cpu_seconds - work_cpu(r)) for r in runs if r.box_cpu_seconds is not None]
    busy = [(r.name, o) for r, o in others if o > 0.05 * cores * r.total]
    if not busy:
        return None
    worst = max(busy, key=lambda b: b[1])
    return (f"note: other processes were busy during {len(busy)} of {len(runs)} runs (up to {worst[1]:.2f} CPU s "
            f"in {worst[0]}): the ceilings assume the cores were the benchmark's alone; re-run on a quiet machine")
