"""Shortening a long description: time and memory against the description's size.

A product whose description is far too long for a channel is composed the way
``promo compose`` and the daily highlight job compose it (the shipped templates, each
platform's text rules). Each (platform, size) runs in a fresh child process, so its peak
RSS is its own; the child also reports the peak of Python allocations (tracemalloc, in a
second run, since tracing slows allocation) and the composed length.

Run from the repository root::

    .venv/bin/python -m bench.compose_long
    .venv/bin/python -m bench.compose_long --sizes 100000,1000000,5000000 --platforms x,mastodon
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "Kerupuk amplang renyah dari ikan tenggiri segar pilihan nelayan Teluk Balikpapan. "


def one(platform: str, size: int) -> dict[str, object]:
    """Compose one post from a ``size``-character description on ``platform`` (in this process)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from scheduler.composer import Composer, product_context
    from scheduler.models import Product, Umkm
    from scheduler.platforms import adapter_class
    from scheduler.textrules import x_weighted

    x_weighted("warm up")  # twitter-text compiles its patterns once per process
    description = (SENTENCE * (size // len(SENTENCE) + 1))[:size]
    product = Product(external_id="p1", name="Amplang Ikan Tenggiri 250 g", description=description, price=25000,
                      url="https://amplang.example/p1", tags=["oleh-oleh", "Balikpapan"], curation="approved",
                      active=True)
    product.umkm = Umkm(external_id="u1", name="Amplang Kakak", city="Balikpapan", curated=True)
    composer = Composer(REPO / "templates", ZoneInfo("Asia/Makassar"))
    rules = adapter_class(platform).rules.text

    def run() -> int:
        context = product_context(product, now=dt.datetime.now(dt.UTC))
        result = composer.compose("product_highlight", platform, context, rules,
                                  body=("product.description", description))
        assert all(rule.fits(result.text) for rule in rules)
        return len(result.text)

    start = time.perf_counter()
    length = run()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    run()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"platform": platform, "size": size, "seconds": seconds, "traced_peak": traced, "length": length,
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,5000000", help="description sizes, characters")
    parser.add_argument("--platforms", default="x,mastodon,bluesky,instagram,facebook", help="platforms")
    parser.add_argument("--child", nargs=2, metavar=("PLATFORM", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one(args.child[0], int(args.child[1]))))
        return 0
    print(f"{'platform':<10} {'description':>12} {'time':>8} {'traced peak':>12} {'× size':>7} "
          f"{'max RSS':>9} {'post':>6}")
    for platform in args.platforms.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            out = subprocess.run([sys.executable, "-m", "bench.compose_long", "--child", platform, str(size)],
                                 cwd=REPO, capture_output=True, text=True, timeout=600, check=True)
            r = json.loads(out.stdout)
            print(f"{platform:<10} {size:>12,} {r['seconds']:>7.3f}s {r['traced_peak'] / 1e6:>10.1f}MB "
                  f"{r['traced_peak'] / size:>7.1f} {r['max_rss_kb'] / 1024:>7.0f}MB {r['length']:>6,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
