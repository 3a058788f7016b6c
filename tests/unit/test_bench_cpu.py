"""The burst matrix's CPU accounting (bench/cpu.py): the /proc readers count what a process
burns, children it reaped included, and the ceiling arithmetic of the matrix's report."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench import burst, cpu

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

#: A process that renames itself (its comm), then runs the given code; "ready" once renamed.
RENAMED = """import os, sys, time
with open("/proc/self/comm", "w") as fh:
    fh.write(sys.argv[1])
{code}
"""
#: Burn CPU until stdin closes (a thread watches it).
BURN = """import threading
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print("ready", flush=True)
while True:
    pass
"""
#: Fork a child (same name) that burns 0.3 s of CPU and exits; reap it; wait for stdin to close.
REAP = """pid = os.fork()
if pid == 0:
    while time.process_time() < 0.3:
        pass
    os._exit(0)
os.waitpid(pid, 0)
print("reaped", flush=True)
sys.stdin.read()
"""


@contextmanager
def renamed(code: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    name = f"bc{uuid.uuid4().hex[:10]}"  # comm holds 15 characters
    proc = subprocess.Popen([sys.executable, "-c", RENAMED.format(code=code), name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield name, proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
        assert proc.stdout is not None
        proc.stdout.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_reader_grows_while_a_process_burns_cpu() -> None:
    with renamed(BURN) as (name, proc):
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        first = cpu.processes_cpu_seconds(name)
        assert first is not None
        wait_for(lambda: (cpu.processes_cpu_seconds(name) or 0.0) > first)
        # The machine-wide figure grows too.
        box = cpu.box_busy_seconds()
        assert box is not None
        wait_for(lambda: (cpu.box_busy_seconds() or 0.0) > box)


def test_reader_keeps_the_cpu_of_children_once_reaped() -> None:
    """A PostgreSQL backend that comes and goes between two readings still counts: the postmaster's
    cutime/cstime carry it once reaped."""
    with renamed(REAP) as (name, proc):
        assert proc.stdout is not None and proc.stdout.readline().strip() == "reaped"
        seconds = cpu.processes_cpu_seconds(name)
        assert seconds is not None and seconds >= 0.25  # the child's 0.3 s, in clock ticks


def test_reader_says_none_when_it_cannot_tell(tmp_path: Path) -> None:
    assert cpu.processes_cpu_seconds(f"no{uuid.uuid4().hex[:10]}") is None  # no such process
    assert cpu.postgres_cpu_seconds(tmp_path / "missing") is None
    assert cpu.box_busy_seconds(proc=tmp_path / "missing") is None
    assert cpu.delta(None, 2.0) is None and cpu.delta(1.0, 3.5) == 2.5


def part(name: str, seconds: float, cpu_s: float = 0.1, db: float | None = None, fake: float = 0.0,
         box: float | None = None) -> burst.PartResult:
    return burst.PartResult(name, 10, 10, 100.0, 100.0 + seconds, cpu_s, 50.0, 80.0, lateness=[seconds / 2] * 10,
                            fake_cpu_seconds=fake, db_cpu_seconds=db, box_cpu_seconds=box)


def test_ceiling_is_bound_by_the_cpu_or_the_floor() -> None:
    one, four = part("PostgreSQL x1", 3.0), part("PostgreSQL x4", 1.8, cpu_s=2.0, db=0.5, fake=0.2)
    c = cpu.ceiling(one, four, floor=1.21, cores=2)
    assert c.bound == pytest.approx(1.35)  # (2.0 + 0.5 + 0.2) / 2 cores
    assert c.busy == pytest.approx(0.75)  # 1.35 s of 1.8 s
    assert c.best == pytest.approx(3.0 / 1.35) and c.speedup == pytest.approx(3.0 / 1.8)
    assert c.share == pytest.approx(1.35 / 1.8)
    assert c.line("PostgreSQL x4") == ("PostgreSQL x4: 1.67x over x1; this machine's ceiling for that work 2.22x "
                                      "(floor 1.21 s, CPU bound 1.35 s: 2 cores busy 75%) → 75% of the ceiling")
    # Little CPU: the floor is the limit.
    assert cpu.ceiling(one, part("x2", 2.0, cpu_s=0.5), floor=1.5, cores=2).best == pytest.approx(2.0)


def test_matrix_report_keeps_its_lines_and_adds_the_cpu_and_the_ceiling() -> None:
    results = {name: part(name, 1.5) for name in burst.FLOORS}
    results["SQLite x1"] = part("SQLite x1", 2.5, cpu_s=2.0, fake=0.3, box=2.4)
    results["PostgreSQL x1"] = part("PostgreSQL x1", 3.0, cpu_s=2.0, db=1.0, fake=0.3, box=3.5)
    results["PostgreSQL x4"] = part("PostgreSQL x4", 1.8, cpu_s=2.0, db=0.5, fake=0.2, box=2.7)
    text = burst.matrix_report(results, burst.Options(posts=10), [1, 4], cores=2)
    lines = text.splitlines()

    assert "PostgreSQL x4 speed-up over x1: 1.67x (>= 1.8x: NO)" in lines
    assert "PostgreSQL x1 / SQLite x1: 1.20x (<= 1.3x: yes)" in lines
    assert "floor = fastest plain client: floor 1.50 s" in lines
    row = next(line for line in lines if line.startswith("SQLite x1 ") and "n/a" in line).split()
    assert row[3:] == ["n/a", "0.30", "0.10", "1.15s", "46%"]  # others: 2.4 - 2.3; bound 2.3 / 2
    row = next(line for line in lines if line.startswith("PostgreSQL x4 ") and "%" in line).split()
    assert row[2:] == ["2.00", "0.50", "0.20", "0.00", "1.35s", "75%"]
    assert lines[-1] == ("PostgreSQL x4: 1.67x over x1; this machine's ceiling for that work 2.00x "
                         "(floor 1.50 s, CPU bound 1.35 s: 2 cores busy 75%) → 83% of the ceiling")
    # Others used 0.1 and 0.2 CPU s, under 5% of the cores over each run: no note.
    assert "other processes were busy" not in text
    results["PostgreSQL x1"].box_cpu_seconds = 3.3 + 1.0  # a third of a core's worth of someone else's work
    text = burst.matrix_report(results, burst.Options(posts=10), [1, 4], cores=2)
    assert text.splitlines()[-1].startswith("note: other processes were busy during 1 of 3 runs (up to 1.00 CPU s "
                                            "in PostgreSQL x1)")
