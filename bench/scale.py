"""Scale: 100k queued posts and 1M history rows, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.scale                               # SQLite and the local PostgreSQL
    .venv/bin/python -m bench.scale --posts 10000 --history 100000 --products 5000
    .venv/bin/python -m bench.scale --database-url sqlite:///big.db --explain

Fills a fresh database with bulk statements (N channels, ``--posts`` queued posts spread over
them, ``--due`` of them due now, one per channel, and ``--history`` history rows), then times:
the first history page and a page ``--depth`` rows deep (keyset, against OFFSET in the same
run), the dispatcher's claim with ``--due`` posts due, a full CSV export (rows/s and peak
RSS) and an import of ``--products`` products (rows/s). PostgreSQL runs in a fresh schema of
TEST_PG_URL (default the tests' local server), dropped afterwards. Not a test; tests
never assert timings (tests/integration/test_bench_smoke.py runs it at tiny sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, create_engine, event, func, insert, select, text

from scheduler.importer import import_file
from scheduler.models import Channel, HistoryEntry, Post
from scheduler.storage import claims as store
from scheduler.storage.db import Database
from scheduler.views import HistoryFilter, _filtered, _history_dict, export_history, history_page

PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
UTC = ZoneInfo("UTC")
NOW = dt.datetime(2027, 6, 1, 9, tzinfo=dt.UTC)
CLAIMER = "bench-claim"
_P, _C, _H = (cast(Table, m.__table__) for m in (Post, Channel, HistoryEntry))


@dataclass
class Options:
    posts: int = 100_000
    history: int = 1_000_000
    due: int = 2_570
    depth: int = 500_000
    products: int = 50_000
    page: int = 50
    explain: bool = False
    #: Seconds to sample an idle `promo serve` over the database (0: not run).
    idle_seconds: float = 0.0


@dataclass
class Result:
    database: str
    figures: dict[str, str] = field(default_factory=dict)
    explain: str = ""


def timed(fn: Callable[[], Any], runs: int = 5) -> float:
    """Median seconds of ``runs`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fill(db: Database, o: Options) -> None:
    """Channels (one per due post), queued posts and history rows, in bulk statements."""
    channels = max(1, o.due)
    with db.engine.begin() as conn:
        conn.execute(insert(_C), [dict(name=f"ch{i}", platform="outbox", source="env", options={},
                                       status="active", created_at=NOW, updated_at=NOW) for i in range(channels)])
        first_channel = conn.execute(select(func.min(_C.c.id))).scalar_one()
    batch: list[dict[str, Any]] = []

    def flush(table: Table) -> None:
        if batch:
            with db.engine.begin() as conn:
                conn.execute(insert(table), batch)
            batch.clear()

    for i in range(o.posts):
        due = i < o.due  # the first post of each channel is due; the rest wait hours ahead
        batch.append(dict(
            channel_id=first_channel + i % channels, kind="free_text", text=f"Promo UMKM #{i}", status="scheduled",
            scheduled_at=NOW - dt.timedelta(seconds=1) if due else NOW + dt.timedelta(minutes=10 + i),
            attempts=0, failures=0, idempotency_key=uuid.uuid4().hex, created_by="bench",
            created_at=NOW, updated_at=NOW))
        if len(batch) == 10_000:
            flush(_P)
    flush(_P)
    with db.engine.connect() as conn:
        first_post = conn.execute(select(func.min(_P.c.id))).scalar_one()
    start = NOW - dt.timedelta(seconds=o.history)
    for k in range(o.history):
        post = first_post + k % max(1, o.posts)
        ok = k % 4 != 0
        batch.append(dict(post_id=post, channel_id=first_channel + (post - first_post) % channels, action="attempt",
                          started_at=start + dt.timedelta(seconds=k), finished_at=start + dt.timedelta(seconds=k),
                          from_status="scheduled", to_status="published" if ok else "retry_wait",
                          outcome="published" if ok else "transient", http_status=200 if ok else 503,
                          error=None if ok else "HTTP 503", actor="bench"))
        if len(batch) == 20_000:
            flush(_H)
    flush(_H)


def offset_page(db: Database, offset: int, limit: int) -> list[dict[str, Any]]:
    """The baseline: the same joined query paged with OFFSET."""
    with db.read_session() as s:
        q = _filtered(HistoryFilter(all=True)).order_by(HistoryEntry.id.desc()).offset(offset).limit(limit)
        return [_history_dict(r, UTC) for r in s.execute(q)]


def measure(db: Database, o: Options, name: str, workdir: Path) -> Result:
    res = Result(name)
    f = HistoryFilter(all=True)
    t0 = time.perf_counter()
    fill(db, o)
    res.figures["generate"] = f"{time.perf_counter() - t0:.1f} s for {o.posts:,} posts + {o.history:,} history rows"
    with db.engine.begin() as conn:  # fresh statistics, as autovacuum (PostgreSQL) would gather them
        conn.exec_driver_sql("ANALYZE")
    with db.engine.connect() as conn:
        top = conn.execute(select(func.max(_H.c.id))).scalar_one() or 0
    depth = min(o.depth, max(0, o.history - o.page))
    cursor = top - depth + 1

    def page(after: int | None) -> Callable[[], Any]:
        def run() -> Any:
            with db.read_session() as s:
                return history_page(s, f, UTC, after=after, limit=o.page)
        return run

    first = timed(page(None))
    deep = timed(page(cursor))
    deep_offset = timed(lambda: offset_page(db, depth, o.page), runs=3)
    res.figures["history first page"] = f"{first * 1000:.1f} ms ({o.page} rows)"
    res.figures[f"history page {depth:,} rows deep"] = (f"{deep * 1000:.1f} ms keyset; OFFSET {deep_offset * 1000:.1f} ms"
                                                        f" ({deep_offset / max(deep, 1e-9):.0f}x)")

    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        statements.append((sql, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    start = time.perf_counter()
    claimed = store.claim_due(db.engine, worker=CLAIMER, now=NOW, lease=dt.timedelta(minutes=5), limit=10_000)
    claim = time.perf_counter() - start
    event.remove(db.engine, "before_cursor_execute", capture)
    res.figures["claim"] = (f"{claim * 1000:.1f} ms, {len(claimed):,} claimed of {o.posts:,} queued "
                            f"({o.due:,} due), history rows included")
    unclaim(db)
    for limit in (256, 10_000):  # the dispatcher's batch (CLAIM_BATCH), and every due post at once
        ms, n = claim_statements(db, limit)
        res.figures[f"claim statements, limit {limit:,}"] = f"{ms:.1f} ms ({n:,} posts; rolled back)"
    if o.explain:
        res.explain = explain_claim(db, statements[:-1])  # the last one inserts the attempts' history
    res.figures.update(read_commands(db, workdir))
    if o.idle_seconds:
        res.figures["idle promo serve"] = idle_service(db, workdir, o.idle_seconds)

    sink = workdir / f"export-{name}.csv"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with db.read_session() as s, sink.open("w", encoding="utf-8", newline="") as out:
        n = export_history(s, f, UTC, out)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res.figures["CSV export"] = (f"{n:,} rows in {took:.1f} s = {n / took:,.0f} rows/s; peak RSS {after // 1024} MiB "
                                 f"(+{(after - before) // 1024} MiB)")

    res.figures.update(measure_import(db, o, name, workdir))
    return res


def measure_import(db: Database, o: Options, name: str, workdir: Path) -> dict[str, str]:
    """``--products`` products imported as `promo import products` does (the batched change hook,
    one transaction), then the same file again (nothing changes) and with every price edited.
    Wall time and this process's CPU time (the machine's load moves the former), with the
    1-minute load average; and the import without the change hook, for reference."""
    figures: dict[str, str] = {}
    umkm = workdir / f"umkm-{name}.csv"
    umkm.write_text("id,name,curated\nu1,Toko Amplang,true\n", encoding="utf-8")
    with db.session() as s:
        import_file(s, "umkm", umkm, tz=UTC, actor="bench")

    def products(path: Path, prefix: str, price: int) -> Path:
        with path.open("w", encoding="utf-8") as fh:
            fh.write("id,umkm_id,name,description,price,image,url,tags,curation\n")
            for i in range(o.products):
                fh.write(f"{prefix}{i},u1,Amplang {i},Renyah dan gurih,{price + i},,,snack|oleh-oleh,approved\n")
        return path

    hook = import_hooks()["batched hook"]
    runs = [("import products (no hook)", products(workdir / f"bare-{name}.csv", "n", 25000), {}),
            ("import products", products(workdir / f"p-{name}.csv", "p", 25000), hook),
            ("re-import unchanged", workdir / f"p-{name}.csv", hook),
            ("re-import, every price changed", products(workdir / f"p2-{name}.csv", "p", 26000), hook)]
    for label, path, hooks in runs:
        start, cpu = time.perf_counter(), time.process_time()
        with db.session() as s:
            result = import_file(s, "products", path, tz=UTC, actor="bench", **hooks)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows = result.created + result.updated + result.unchanged
        figures[label] = (f"{rows:,} rows in {took:.1f} s = {rows / took:,.0f} rows/s (CPU {cpu:.1f} s; "
                          f"load {os.getloadavg()[0]:.1f}; {result.summary()})")
    return figures


def import_hooks() -> dict[str, dict[str, Any]]:
    """The change hooks an import can be given: the per-record one (jobs.event_promotion.record_change_hook,
    what `promo import` passed until 2026-11-29: 1,800 rows/s on SQLite, 740 on PostgreSQL, no longer
    timed) and the batched one the CLI and the web app pass (``on_changes``: records_changed_hook)."""
    from jobs.event_promotion import record_change_hook, records_changed_hook
    from scheduler.composer import Composer
    from scheduler.config import load_settings

    settings = load_settings({"PROMO_DATABASE_URL": "sqlite:///unused.db",
                              "PROMO_TEMPLATES_DIR": str(Path(__file__).resolve().parents[1] / "templates")})
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    return {
        "per-record hook": {"on_change": record_change_hook(settings, composer, "bench")},
        "batched hook": {"on_changes": records_changed_hook(settings, composer, "bench")},
    }


def explain_claim(db: Database, statements: list[tuple[str, Any]]) -> str:
    """The claim's plan: the statements the claim ran, again under EXPLAIN (ANALYZE on
    PostgreSQL), in a transaction rolled back afterwards, on the state before the claim."""
    lines: list[str] = []
    pg = db.engine.dialect.name == "postgresql"
    with db.engine.connect() as conn:
        trans = conn.begin()
        try:
            for sql, params in statements:
                if not sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                    continue
                lines.append("-- " + " ".join(sql.split())[:100] + " …")
                out = conn.exec_driver_sql(("EXPLAIN ANALYZE " if pg else "EXPLAIN QUERY PLAN ") + sql, params)
                lines += [str(r[0]) if pg else " ".join(str(c) for c in r) for r in out]
        finally:
            trans.rollback()
    return "\n".join(lines)


def claim_statements(db: Database, limit: int, runs: int = 5) -> tuple[float, int]:
    """Median ms of the claim's statements alone (PostgreSQL: lock the free channels, then take
    their earliest due posts; SQLite: the one UPDATE), each run rolled back; and posts taken."""
    params: dict[str, Any] = {"c_now": NOW, "c_limit": limit, "c_worker": CLAIMER,
                              "c_expires": NOW + dt.timedelta(minutes=5)}
    times, taken = [], 0
    for _ in range(runs + 1):
        with db.engine.connect() as conn:
            trans = conn.begin()
            start = time.perf_counter()
            if conn.dialect.name == "postgresql":
                channels = list(conn.execute(store._LOCK_CHANNELS, params).scalars())
                rows = conn.execute(store._CLAIM_LOCKED, {**params, "c_channels": channels}).all() if channels else []
            else:
                rows = conn.execute(store._CLAIM, params).all()
            times.append(time.perf_counter() - start)
            taken = len(rows)
            trans.rollback()
    return statistics.median(times[1:]) * 1000, taken


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of proc(5))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def promo_env(db: Database, workdir: Path, application: str) -> dict[str, str]:
    """The environment of a `promo` process over the benchmark's database (PostgreSQL connections
    named ``application``, so their server processes can be found)."""
    url = db.engine.url.render_as_string(hide_password=False)
    if db.engine.dialect.name == "postgresql":
        url += ("&" if "?" in url else "?") + f"application_name={application}"
    return {**os.environ, "PROMO_DATABASE_URL": url, "PROMO_SECRET_KEY": "scale-benchmark-secret-key",
            "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
            "PROMO_TEMPLATES_DIR": str(Path(__file__).resolve().parents[1] / "templates"),
            "PROMO_ENV_FILE": str(workdir / "none.env"), "PROMO_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


#: `promo ARGS` that prints its peak resident memory (VmHWM of /proc/self/status) on stderr at exit.
_PEAK_RSS = """
import atexit, sys
def peak():
    with open("/proc/self/status") as f:
        sys.stderr.write("".join(line for line in f if line.startswith("VmHWM:")))
atexit.register(peak)
from scheduler.cli import main
sys.exit(main(sys.argv[1:]))
"""


def read_commands(db: Database, workdir: Path, runs: int = 5) -> dict[str, str]:
    """The read-only commands as a person types them, process start included: the median wall time
    of ``runs`` (after one untimed run) beside `promo --help` (start-up alone) in the same run, and
    for the list of every queued post its peak memory (the child's max RSS)."""
    import subprocess
    import sys

    env = promo_env(db, workdir, "promo-history-bench")
    # As installed: `pip install` writes the bytecode. An environment with PYTHONDONTWRITEBYTECODE
    # set (some CI and sandboxes) would otherwise compile every module of the package at each start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def once(args: tuple[str, ...], peak: bool = False) -> tuple[float, float]:
        """Wall seconds and (``peak``) the command's own peak RSS in MiB: VmHWM, read as it exits.
        Not the child's rusage: a child forked from this big process starts with its pages counted."""
        how = ["-c", _PEAK_RSS, *args] if peak else ["-m", "scheduler.cli", *args]
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, *how], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                  stderr=err, check=False)
            took = time.perf_counter() - start
            err.seek(0)
            text = err.read().decode()
        if done.returncode not in (0, 1):  # `promo status` exits 1 with no service running
            raise RuntimeError(f"promo {' '.join(args)} failed: {text[-2000:]}")
        hwm = [line.split()[1] for line in text.splitlines() if line.startswith("VmHWM:")]
        return took, int(hwm[-1]) / 1024 if hwm else 0.0

    def median(*args: str, peak: bool = False) -> tuple[float, float]:
        once(args)  # warm-up, not timed
        done = [once(args, peak) for _ in range(runs)]
        return sorted(t for t, _ in done)[len(done) // 2], max(r for _, r in done)

    help_s = median("--help")[0]
    out = {}
    for name, args in (("promo history (default page)", ("history",)),
                       ("promo post list --limit 20", ("post", "list", "--limit", "20")),
                       ("promo status", ("status",))):
        took = median(*args)[0]
        out[name] = f"{took:.2f} s (promo --help {help_s:.2f} s in the same run: {took / help_s:.1f}x)"
    took, rss = median("post", "list", "--status", "scheduled", "--format", "json", peak=True)
    out["promo post list --status scheduled --format json"] = f"{took:.2f} s, peak RSS {rss:.0f} MiB"
    return out


def stop(proc: Any) -> None:
    """End a `promo` process the benchmark started: SIGTERM, then SIGKILL after 20 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def idle_service(db: Database, workdir: Path, seconds: float) -> str:
    """`promo serve` (default poll: a dispatcher tick every PROMO_POLL_SECONDS) over the filled
    database with nothing due (the posts are due at the benchmark's NOW, in 2027): once its first
    tick is recorded and the start-up jobs settled, its CPU (utime+stime from /proc) and RSS over
    ``seconds``; on PostgreSQL also the CPU of the server processes serving its connections."""
    import subprocess
    import sys

    from scheduler.models import Heartbeat

    pg = db.engine.dialect.name == "postgresql"
    env = promo_env(db, workdir, "promo-idle-bench")
    with db.engine.begin() as conn:
        conn.execute(Heartbeat.__table__.delete())
    log = workdir / "idle-serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--health-port", "0"], cwd=workdir,
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:  # up: its first tick is on record
            with db.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(Heartbeat.__table__)).scalar_one():
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"promo serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(min(10.0, seconds))  # the start-up jobs (highlight sweep, event promotion) finish
        backends: list[int] = []
        if pg:
            with db.engine.connect() as conn:
                backends = list(conn.execute(text("SELECT pid FROM pg_stat_activity "
                                                  "WHERE application_name = 'promo-idle-bench'")).scalars())
        hz = os.sysconf("SC_CLK_TCK")
        before = _cpu_ticks(proc.pid)
        server_before = {b: _cpu_ticks(b) for b in backends if Path(f"/proc/{b}").exists()}
        load = os.getloadavg()[0]
        start = time.monotonic()
        rss = []
        while time.monotonic() - start < seconds:
            time.sleep(min(1.0, seconds))
            rss.append(_rss_mib(proc.pid))
        took = time.monotonic() - start
        cpu = (_cpu_ticks(proc.pid) - before) / hz / took * 100
        server = sum(_cpu_ticks(b) - t for b, t in server_before.items() if Path(f"/proc/{b}").exists()) / hz
        figure = (f"{cpu:.2f}% of a core over {took:.0f} s, RSS {rss[-1]:.0f} MiB (max {max(rss):.0f})"
                  f"; load average {load:.2f}")
        if pg:
            figure += f"; its {len(server_before)} PostgreSQL server processes {server / took * 100:.2f}% of a core"
        return figure
    finally:
        stop(proc)


def unclaim(db: Database) -> None:
    """Put back what the timed claim changed, so the plan is explained on the same state."""
    with db.engine.begin() as conn:
        conn.execute(_H.delete().where(_H.c.actor == CLAIMER))
        conn.execute(_P.update().where(_P.c.lease_owner == CLAIMER).values(
            status="scheduled", lease_owner=None, lease_expires_at=None, attempts=0))


@contextmanager
def databases(urls: list[str], workdir: Path) -> Iterator[list[tuple[str, Database]]]:
    made: list[tuple[str, Database]] = []
    cleanup: list[Callable[[], None]] = []
    try:
        for url in urls:
            if url == "sqlite":
                db = Database(f"sqlite:///{workdir}/scale.db")
                made.append(("sqlite", db))
            elif url == "postgresql":
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine(PG_URL)
                try:
                    with admin.begin() as conn:
                        conn.execute(text(f"CREATE SCHEMA {schema}"))
                except Exception as exc:  # noqa: BLE001 - reported, the other database still runs
                    print(f"postgresql: skipped ({PG_URL}: {exc.__class__.__name__})")
                    admin.dispose()
                    continue

                def drop(admin: Any = admin, schema: str = schema) -> None:
                    with admin.begin() as conn:
                        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
                cleanup.append(drop)
                sep = "&" if "?" in PG_URL else "?"  # in the URL: `promo serve` (idle_service) uses it too
                made.append(("postgresql", Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")))
            else:
                made.append((url.split(":")[0], Database(url)))
        for _, db in made:
            db.upgrade()
        yield made
    finally:
        for _, db in made:
            db.dispose()
        for fn in cleanup:
            fn()


def report(results: list[Result], o: Options) -> str:
    out = [f"posts {o.posts:,}, history {o.history:,}, due {o.due:,}, products {o.products:,}"]
    for r in results:
        out.append(f"\n[{r.database}]")
        out += [f"  {k}: {v}" for k, v in r.figures.items()]
        if r.explain:
            out += ["  claim plan:", *("    " + line for line in r.explain.splitlines())]
    return "\n".join(out)


def run(o: Options, urls: list[str]) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="promo-scale-") as tmp, databases(urls, Path(tmp)) as dbs:
        return [measure(db, o, name, Path(tmp)) for name, db in dbs]


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=100_000, help="queued posts (default 100,000)")
    p.add_argument("--history", type=int, default=1_000_000, help="history rows (default 1,000,000)")
    p.add_argument("--due", type=int, default=2_570, help="posts due now, one per channel (default 2,570)")
    p.add_argument("--depth", type=int, default=500_000, help="rows deep for the deep page (default 500,000)")
    p.add_argument("--products", type=int, default=50_000, help="products to import (default 50,000)")
    p.add_argument("--database-url", action="append", default=None,
                   help='a database URL, or "sqlite"/"postgresql" (default both; repeatable)')
    p.add_argument("--explain", action="store_true", help="print the claim's query plan")
    p.add_argument("--idle-seconds", type=float, default=30.0,
                   help="sample an idle `promo serve` over the database this long (default 30; 0: skip)")
    a = p.parse_args(args)
    o = Options(posts=a.posts, history=a.history, due=min(a.due, a.posts), depth=a.depth, products=a.products,
                explain=a.explain, idle_seconds=a.idle_seconds)
    print(report(run(o, a.database_url or ["sqlite", "postgresql"]), o))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
