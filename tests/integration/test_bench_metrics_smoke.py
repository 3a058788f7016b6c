"""bench/metrics.py still runs end to end and reads every post once (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_metrics_bench_reads_every_post_in_batches() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.metrics", "--posts", "400", "--channels", "4"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # 200 Mastodon posts (one request each) and 200 X posts (100 a request): 202 requests.
    assert "requests: 202 (Mastodon 200, X 2); counted by the job: 202" in done.stdout, done.stdout
