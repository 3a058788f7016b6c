"""How long `promo --help` takes to start, against a bare interpreter in the same run.

    .venv/bin/python -m bench.startup            # 15 runs of each
    .venv/bin/python -m bench.startup --runs 30 --command "jobs list"

Runs ``python -m scheduler.cli --help`` (or ``--command``) N times and ``python -c pass`` N
times, interleaved so both see the same machine load, and prints each median (and the
fastest) with the ratio. The machine is shared: compare the ratio, not the absolute times.
Not a test; tests never assert timings (tests/integration/test_cli_output.py checks instead
that `--help` imports none of the heavy libraries).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.startup", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    p.add_argument("--command", default="--help", help='promo arguments to time (default "--help")')
    opts = p.parse_args(args)
    env = dict(os.environ)
    promo = [sys.executable, "-m", "scheduler.cli", *shlex.split(opts.command)]
    bare = [sys.executable, "-c", "pass"]
    once(promo, env)  # warm the bytecode cache and the page cache
    times: dict[str, list[float]] = {"promo": [], "bare": []}
    for _ in range(opts.runs):
        times["promo"].append(once(promo, env))
        times["bare"].append(once(bare, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"promo {opts.command}: median {med['promo'] * 1000:.0f} ms (fastest {min(times['promo']) * 1000:.0f} ms)"
          f" over {opts.runs} runs")
    print(f"python -c pass:  median {med['bare'] * 1000:.0f} ms (fastest {min(times['bare']) * 1000:.0f} ms)")
    print(f"ratio: {med['promo'] / med['bare']:.1f}x a bare interpreter; "
          f"promo's own start-up {max(0.0, med['promo'] - med['bare']) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
