"""The burst benchmark's dispatcher part still runs end to end (no timing is asserted).

It runs exactly as ``python -m bench.burst`` does: the fake platform in its own process,
the dispatcher part in a child process on a fresh SQLite database; only smaller.
"""

from __future__ import annotations

import pytest

from bench import burst
from tests.conftest import PG_URL, pg_schema_url


def test_dispatcher_part_publishes_every_post_once() -> None:
    opts = burst.Options(posts=30, latency_ms=10, clients=4, connections=2, lead=0.5, timeout=60)
    with burst.Fake(opts.latency_ms) as fake:
        result = burst.run_part_isolated("dispatcher", opts, fake)

    assert result.statuses == {"published": 30}  # read back from the part's database
    assert result.published == 30
    # The platform saw one request per channel, on each channel's own URL, none repeated.
    assert len(result.lateness) == 30
    assert result.duplicates == 0
    assert sorted(result.paths) == sorted(f"/{burst.channel_name(i)}" for i in range(30))
    # Nothing was sent before it was due.
    assert min(result.lateness) >= 0


@pytest.mark.postgres
def test_matrix_runs_and_accounts_the_cpu_of_each_dispatcher_run() -> None:
    """``--matrix 1,2`` end to end, small: the plain clients, SQLite, PostgreSQL with 1 and 2
    processes; each dispatcher run reports its CPU (the local server's on PostgreSQL, "n/a" on
    SQLite) and the x2 run its ceiling. Skips without the local PostgreSQL server."""
    with pg_schema_url():  # skips, or fails under TEST_REQUIRE_POSTGRES=1, without a server
        pass
    # 300 posts: enough server work to be above /proc's 10 ms clock tick in every run (at 30 a run
    # could read 0.00 s)
    opts = burst.Options(posts=300, latency_ms=10, clients=4, connections=2, lead=0.5, timeout=60,
                         database_url=PG_URL)
    with burst.Fake(opts.latency_ms) as fake:
        text = burst.run_matrix(opts, fake, [1, 2])

    lines = text.splitlines()
    for label in ("SQLite x1", "PostgreSQL x1", "PostgreSQL x2"):
        assert any(line.startswith(label) and "300/300" in line for line in lines), text
        cpu_row = next(line for line in lines if line.startswith(label) and line.endswith("%")).split()
        pg_cpu = cpu_row[3]
        assert (pg_cpu == "n/a") == (label == "SQLite x1"), text
        if label != "SQLite x1":
            assert float(pg_cpu) > 0, text  # the server worked for the burst
    assert "PostgreSQL x2 speed-up over x1:" in text
    assert any(line.startswith("PostgreSQL x2: ") and line.endswith("of the ceiling") for line in lines), text


def test_report_shows_each_part_and_the_ratios() -> None:
    def part(name: str, seconds: float, cpu: float) -> burst.PartResult:
        return burst.PartResult(name, 10, 10, 100.0, 100.0 + seconds, cpu, 50.0, 80.0,
                                lateness=[seconds / 2] * 10)

    text = burst.report({"floor": part("floor", 2.0, 0.01), "dispatcher": part("dispatcher", 3.0, 0.02),
                         "baseline": part("baseline", 30.0, 0.01)}, burst.Options(posts=10))

    assert "dispatcher / floor: 1.50x" in text
    assert "baseline / dispatcher: 10.0x" in text
    assert "10/10" in text


def test_scale_benchmark_runs_at_tiny_sizes() -> None:
    from bench import scale

    opts = scale.Options(posts=60, history=300, due=12, depth=100, products=40, page=10, explain=True, idle_seconds=1)
    results = scale.run(opts, ["sqlite"])
    text = scale.report(results, opts)
    figures = results[0].figures
    assert "12 claimed of 60 queued" in figures["claim"]  # one due post per channel
    assert figures["CSV export"].startswith("300 rows")
    assert all(figures[k].startswith("40 rows") for k in (
        "import products (no hook)", "import products", "re-import unchanged", "re-import, every price changed"))
    assert "40 unchanged" in figures["re-import unchanged"] and "40 updated" in figures["re-import, every price changed"]
    assert "history page 100 rows deep" in text and "claim plan:" in text
    assert "(12 posts; rolled back)" in figures["claim statements, limit 256"]  # the same 12, not taken
    assert "% of a core over" in figures["idle promo serve"] and "RSS" in figures["idle promo serve"]
    assert all("promo --help" in figures[k] for k in (
        "promo history (default page)", "promo post list --limit 20", "promo status"))
    assert "peak RSS" in figures["promo post list --status scheduled --format json"]


def test_web_benchmark_runs_at_tiny_sizes() -> None:
    """bench/web.py end to end, small: pages answered (200) through a real `promo web`, and every
    due post arrived through `promo serve --web`, quiet and during page loads (no timing asserted)."""
    from bench import web

    opts = web.Options(posts=50, history=400, depth=100, runs=1, burst=5, clients=1, timeout=60)
    result = web.run(opts)
    assert set(result.pages_ms) == set(web.TARGETS_MS)
    assert all(ms > 0 for ms in result.pages_ms.values())
    assert {name: len(late) for name, late in result.lateness.items()} == {"quiet": 5, "page loads": 5}
    assert min(min(late) for late in result.lateness.values()) >= 0  # nothing went out before it was due
    assert result.page_loads > 0
    text = web.report(result, opts)
    assert "ratio p99 page loads / quiet" in text and "POST /api/v1/preview" in text


def test_fit_images_benchmark_fits_every_platform_the_same_shared_or_alone() -> None:
    from bench import fit_images

    data = fit_images.photo(800, 600)
    rules = fit_images.platform_rules()
    times, shared = fit_images.fit_all(data, rules, shared=True)
    _, alone = fit_images.fit_all(data, rules, shared=False)
    assert set(times) == set(shared) == {p for p, _ in rules} and len(rules) == 9
    assert {p: f.data for p, f in shared.items()} == {p: f.data for p, f in alone.items()}


def test_reports_benchmark_runs_at_tiny_sizes() -> None:
    """bench/reports.py end to end, small: a month of posts with counters, every Reports address
    answered (200) through a real `promo web`, and the ratios printed (no timing asserted)."""
    from bench import reports

    filled, times = reports.measure(reports.Options(posts=40, umkm=3, reads=2, runs=1))
    assert filled.startswith("40 posts, 320 counter rows")  # 32 on counting platforms × 2 reads × 5 counters
    assert set(times) == {reports.BASELINE, "/reports (by channel)", "/reports (by hour)", "/reports/monthly",
                          "/reports/monthly CSV", "/api/v1/reports/monthly"}
    assert all(ms > 0 and cpu >= 0 for ms, cpu in times.values())
    assert "server CPU ms" in reports.report(filled, times)
