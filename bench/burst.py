"""Burst benchmark: N posts due at the same instant, each on its own channel.

The default, 2,570 posts, is a national daily highlight: 514 regencies × 5 channels.
Every channel is a ``webhook`` channel pointing at a fake platform (a separate process on
127.0.0.1) that answers after a fixed latency and records when each request arrived.

Four parts run one after another, each in a fresh child process (so CPU time and peak
RSS are its own, and the fake's work is not counted):

``floor``       bare httpx, asyncio, no database: the same number of sharded clients and
                connections as the dispatcher, one shared SSL context, every request
                started at T. What the network path alone costs.
``gated``       the same, with an ``asyncio.Semaphore(connections)`` per client in front of
                httpx, so requests queue in asyncio rather than in httpcore's pool: the
                floor a dispatcher can reach with the same sharding.
``dispatcher``  the real :class:`scheduler.dispatch.Dispatcher` on a fresh database (SQLite
                in a temp dir, or ``--database-url``): 2,570 stored webhook channels, one
                scheduled post each, all due at T; ``tick()`` at T (and every
                PROMO_POLL_SECONDS, as the service's dispatch job does) until all are
                published, then ``drain()``. Logging at INFO to a file, as the service runs.
``baseline``    the naive way: one APScheduler job per post, each calling a synchronous
                ``httpx.Client`` in APScheduler's default 10-thread pool.

For each part: time from T until all published (for the dispatcher: results written),
lateness p50/p95/p99 (the fake's receive time − T), CPU seconds per published post and
peak RSS; then the ratios dispatcher/floor (and /gated) and baseline/dispatcher,
because the machine is shared and absolute figures move.

Run from the repository root::

    .venv/bin/python -m bench.burst                 # 2,570 posts, 100 ms latency
    .venv/bin/python -m bench.burst --posts 500 --latency-ms 50 --skip-baseline
    .venv/bin/python -m bench.burst --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.burst --profile /tmp/burst.prof --skip-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import (
    box_busy_seconds,
    ceiling,
    cpu_table,
    delta,
    others_note,
    pid_cpu_seconds,
    postgres_cpu_seconds,
)

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("floor", "gated", "aiohttp", "dispatcher", "baseline")
#: The plain clients, no database: the fastest of them is the floor the dispatcher is measured against.
FLOORS = ("floor", "gated", "aiohttp")
CHANNEL_KINDS = ("fb", "ig", "x", "tg", "wa")  # 5 channels per regency
SECRET_KEY = "burst-benchmark-secret-key"


@dataclass
class Options:
    """What one run measures; passed to each part's child process as JSON."""

    posts: int = 2570
    latency_ms: float = 100.0
    clients: int = 64
    connections: int = 4
    database_url: str | None = None
    lead: float = 2.0  # seconds between the end of set-up and T
    timeout: float = 120.0  # give up waiting for a part after this long
    log_level: str = "INFO"
    profile: str | None = None
    workers: int = 1  # dispatch processes, as `promo serve --workers N` runs them


@dataclass
class PartResult:
    """One part's figures (times are Unix seconds; lateness comes from the fake's records)."""

    name: str
    posts: int
    published: int
    scheduled_at: float
    done_at: float
    cpu_seconds: float
    rss_start_mb: float
    rss_peak_mb: float
    statuses: dict[str, int] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    duplicates: int = 0
    fake_cpu_seconds: float = 0.0
    #: The dispatcher's database work from T on: per statement kind, [count, wall seconds], plus
    #: "checkout" (a pool checkout; pinged only after it sat idle) and "commit".
    db_calls: dict[str, list[float]] = field(default_factory=dict)
    #: CPU seconds from T until all were published of the local PostgreSQL server's processes (None:
    #: SQLite, or /proc unreadable) and of every process on the machine but the bench's (None: unreadable).
    db_cpu_seconds: float | None = None
    box_cpu_seconds: float | None = None

    @property
    def total(self) -> float:
        return self.done_at - self.scheduled_at

    @property
    def cpu_per_post_ms(self) -> float:
        return 1000 * self.cpu_seconds / max(1, self.published)

    def pct(self, p: float) -> float:
        return percentile(self.lateness, p)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def channel_name(i: int) -> str:
    """The i-th channel: regency ``i // 5``, one of 5 channel kinds."""
    return f"reg{i // len(CHANNEL_KINDS) + 1:03d}_{CHANNEL_KINDS[i % len(CHANNEL_KINDS)]}"


def post_text(i: int) -> str:
    return (f"Sorotan UMKM hari ini #{i}: Keripik Tempe Bu Sari, renyah dan gurih, Rp 25.000. "
            "Pesan lewat WhatsApp atau datang langsung ke Pasar Kreatif, Jl. Merdeka 12. "
            "#UMKM #BanggaBuatanIndonesia")


def request_body(i: int, key: str) -> bytes:
    """The JSON the webhook adapter would send (floor and baseline send the same size)."""
    return json.dumps({"channel": channel_name(i), "post_id": i + 1, "idempotency_key": key,
                       "text": post_text(i), "link": f"https://umkm.example.id/p/{i}", "title": None,
                       "image_url": None}, ensure_ascii=False, separators=(",", ":")).encode()


def rss_mb() -> float:
    """Current resident set size."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the fake platform -------------------------------------------------------------------

class Fake:
    """The tests' :class:`tests.fakeplatform.FakePlatform` in its own process.

    It runs apart so that its CPU time is not counted as the part's and it does not
    compete for the part's GIL; the parent asks for its records over stdin/stdout.
    """

    def __init__(self, latency_ms: float):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.burst", "--serve-fake", "--latency-ms", str(latency_ms)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        line = self._out.readline()
        if not line.startswith("port "):
            self.close()
            raise RuntimeError(f"fake platform did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def records(self) -> list[tuple[float, str, str]]:
        """Every POST received since the last call: (receive time, path, idempotency key)."""
        self._in.write("records\n")
        self._in.flush()
        return [tuple(r) for r in json.loads(self._out.readline())]  # type: ignore[misc]

    def cpu_seconds(self) -> float:
        """CPU time the fake has used so far (to show it is not the bottleneck)."""
        return pid_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self._in.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()

    def __enter__(self) -> Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_fake(latency_ms: float) -> None:
    """The fake's process: print ``port N``, then answer each ``records`` line on stdin."""
    from tests.fakeplatform import FakePlatform

    fake = FakePlatform(seed=1).start()
    fake.configure(latency=latency_ms / 1000)
    print(f"port {fake.port}", flush=True)
    seen = 0
    for line in sys.stdin:
        if line.strip() == "records":
            requests = fake.requests_for(None, "POST")
            new, seen = requests[seen:], len(requests)
            print(json.dumps([[r.received_at, r.path, r.key or ""] for r in new]), flush=True)
    fake.stop()


# --- the parts (each runs in a child process) ----------------------------------------------

def _wait_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def run_floor(opts: Options, url: str, gated: bool = False) -> PartResult:
    """Bare httpx, asyncio, sharded clients sharing one SSL context; no database.

    ``gated``: a semaphore of ``connections`` per client in front of httpx, so requests
    wait in asyncio instead of in httpcore's pool (whose bookkeeping grows with waiters).
    """

    async def burst() -> PartResult:
        context = ssl.create_default_context()
        limits = httpx.Limits(max_connections=opts.connections, max_keepalive_connections=opts.connections)
        clients = [httpx.AsyncClient(verify=context, limits=limits, timeout=30) for _ in range(opts.clients)]
        gates = [asyncio.Semaphore(opts.connections if gated else opts.posts) for _ in clients]
        keys = [uuid.uuid4().hex for _ in range(opts.posts)]
        bodies = [request_body(i, keys[i]) for i in range(opts.posts)]
        ok = 0

        async def one(i: int) -> None:
            nonlocal ok
            async with gates[i % len(clients)]:
                response = await clients[i % len(clients)].post(
                    f"{url}/{channel_name(i)}", content=bodies[i],
                    headers={"Content-Type": "application/json", "Idempotency-Key": keys[i]})
            if response.is_success:
                ok += 1

        scheduled = time.time() + opts.lead
        await asyncio.sleep(scheduled - time.time())
        rss0, cpu0 = rss_mb(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(opts.posts)), return_exceptions=True)
        done, cpu = time.time(), time.process_time() - cpu0
        for client in clients:
            await client.aclose()
        return PartResult("gated" if gated else "floor", opts.posts, ok, scheduled, done, cpu, rss0,
                          peak_rss_mb())

    return asyncio.run(burst())


def run_gated_floor(opts: Options, url: str) -> PartResult:
    return run_floor(opts, url, gated=True)


def run_aiohttp_floor(opts: Options, url: str) -> PartResult:
    """Bare aiohttp, asyncio: the same sharding (``clients`` sessions, each a connector of
    ``connections``); requests queue in aiohttp's connector. No database, no httpx."""
    import aiohttp

    async def burst() -> PartResult:
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=opts.connections),
                                          timeout=aiohttp.ClientTimeout(total=60)) for _ in range(opts.clients)]
        keys = [uuid.uuid4().hex for _ in range(opts.posts)]
        bodies = [request_body(i, keys[i]) for i in range(opts.posts)]
        ok = 0

        async def one(i: int) -> None:
            nonlocal ok
            async with sessions[i % len(sessions)].post(
                    f"{url}/{channel_name(i)}", data=bodies[i],
                    headers={"Content-Type": "application/json", "Idempotency-Key": keys[i]}) as response:
                await response.read()
                if response.status < 300:
                    ok += 1

        scheduled = time.time() + opts.lead
        await asyncio.sleep(scheduled - time.time())
        rss0, cpu0 = rss_mb(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(opts.posts)), return_exceptions=True)
        done, cpu = time.time(), time.process_time() - cpu0
        for session in sessions:
            await session.close()
        return PartResult("aiohttp", opts.posts, ok, scheduled, done, cpu, rss0, peak_rss_mb())

    return asyncio.run(burst())


def run_baseline(opts: Options, url: str) -> PartResult:
    """One APScheduler job per post, a synchronous httpx.Client, the default 10-thread pool."""
    from apscheduler.schedulers.background import BackgroundScheduler

    client = httpx.Client(timeout=30)
    lock = threading.Lock()
    finished = threading.Event()
    ok = failed = 0

    def job(i: int, key: str) -> None:
        nonlocal ok, failed
        try:
            response = client.post(f"{url}/{channel_name(i)}", content=request_body(i, key),
                                   headers={"Content-Type": "application/json", "Idempotency-Key": key})
            success = response.is_success
        except httpx.HTTPError:
            success = False
        with lock:
            ok, failed = ok + success, failed + (not success)
            if ok + failed == opts.posts:
                finished.set()

    scheduler = BackgroundScheduler(timezone=dt.UTC)  # executor: ThreadPoolExecutor(10), the default
    scheduled = time.time() + opts.lead + 1.0  # adding thousands of jobs takes a moment
    run_date = dt.datetime.fromtimestamp(scheduled, dt.UTC)
    for i in range(opts.posts):
        # misfire_grace_time=None: a late job still runs (the default 1 s would drop most).
        scheduler.add_job(job, "date", run_date=run_date, args=[i, uuid.uuid4().hex], id=f"post-{i}",
                          misfire_grace_time=None)
    scheduler.start()
    _wait_until(scheduled)
    rss0, cpu0 = rss_mb(), time.process_time()
    finished.wait(opts.timeout)
    done, cpu = time.time(), time.process_time() - cpu0
    scheduler.shutdown(wait=False)
    client.close()
    return PartResult("baseline", opts.posts, ok, scheduled, done, cpu, rss0, peak_rss_mb())


@contextlib.contextmanager
def _database(opts: Options, tmp: Path) -> Iterator[str]:
    """A fresh database URL: SQLite in ``tmp``, or a throw-away schema of ``--database-url``."""
    if not opts.database_url:
        yield f"sqlite:///{tmp}/promo.db"
        return
    from sqlalchemy import create_engine, text

    schema = f"burst_{os.getpid()}"
    admin = create_engine(opts.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in opts.database_url else "?"
    try:
        yield f"{opts.database_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def load_burst(db: Any, url: str, posts: int, scheduled: dt.datetime) -> None:
    """Store ``posts`` webhook channels (as ``promo channels add`` would) and one post due on each."""
    from sqlalchemy import insert, select

    from scheduler.models import Channel, HistoryEntry, Post, utcnow
    from scheduler.storage import crypto

    now = utcnow()
    keys = crypto.keyring(SECRET_KEY)
    with db.engine.begin() as conn:
        # The webhook URL is a secret option, so it is stored encrypted, like add_channel does.
        conn.execute(insert(Channel.__table__), [
            dict(name=channel_name(i), platform="webhook", source="db", options={}, status="active",
                 secrets_enc=keys.encrypt_bytes(json.dumps({"URL": f"{url}/{channel_name(i)}"}).encode()),
                 created_at=now, updated_at=now)
            for i in range(posts)
        ])
        ids = dict(conn.execute(select(Channel.name, Channel.id)).all())
        conn.execute(insert(Post.__table__), [
            dict(channel_id=ids[channel_name(i)], kind="daily_highlight", text=post_text(i),
                 link=f"https://umkm.example.id/p/{i}", status="scheduled", scheduled_at=scheduled,
                 idempotency_key=uuid.uuid4().hex, created_by="bench", created_at=now, updated_at=now,
                 attempts=0, failures=0)
            for i in range(posts)
        ])
        rows = conn.execute(select(Post.id, Post.channel_id)).all()
        conn.execute(insert(HistoryEntry.__table__), [
            dict(post_id=pid, channel_id=cid, action="transition", started_at=now, finished_at=now,
                 to_status="scheduled", outcome="scheduled", error="created", actor="bench")
            for pid, cid in rows
        ])


def run_dispatcher(opts: Options, url: str) -> PartResult:
    """The real Dispatcher on a fresh database; see the module docstring."""
    from scheduler.config import load_settings
    from scheduler.logs import setup_logging
    from scheduler.process import run_async
    from scheduler.storage.db import Database

    tmp = Path(tempfile.mkdtemp(prefix="promo-burst-"))
    handler = logging.FileHandler(tmp / "service.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        with _database(opts, tmp) as db_url:
            env = {
                "PROMO_DATABASE_URL": db_url, "PROMO_SECRET_KEY": SECRET_KEY,
                "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
                "PROMO_HTTP_CLIENTS": str(opts.clients), "PROMO_HTTP_CONNECTIONS": str(opts.connections),
                "PROMO_LOG_LEVEL": opts.log_level, "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
            }
            settings = load_settings(env)
            setup_logging(settings.log_level)  # the service's log levels and redaction, into the file
            db = Database(settings.database_url)
            db.upgrade()
            # Not due yet: T is fixed once the dispatcher is up, since loading takes a while.
            load_burst(db, url, opts.posts, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            try:
                workers = start_workers(opts, env, tmp, db)
                before = workers_cpu(workers)  # their start-up is not part of the burst
                try:
                    result = run_async(_dispatch_burst(settings, db, opts))  # the service's event loop
                    result.cpu_seconds += workers_cpu(workers) - before
                finally:
                    stop_workers(workers)
                return result
            finally:
                db.dispose()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        shutil.rmtree(tmp, ignore_errors=True)


def start_workers(opts: Options, env: dict[str, str], tmp: Path, db: Any) -> list[subprocess.Popen[bytes]]:
    """The extra dispatch processes, as `promo serve --workers N` starts them; ready when ticking."""
    from sqlalchemy import func, select

    from scheduler.models import Heartbeat

    procs = []
    for i in range(opts.workers - 1):
        log = open(tmp / f"worker{i}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "scheduler.cli", "serve", "--dispatch-only", "--health-port", "0"],
            cwd=tmp, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **env, "PROMO_POLL_SECONDS": "0.5", "PROMO_ENV_FILE": str(tmp / "none.env"),
                 "PYTHONPATH": str(ROOT)}))
    deadline = time.time() + 60
    while procs and time.time() < deadline:
        with db.session() as session:
            if session.scalar(select(func.count()).select_from(Heartbeat)) >= len(procs):
                break
        time.sleep(0.1)
    return procs


def workers_cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds the extra dispatch processes have used so far."""
    return sum(pid_cpu_seconds(p.pid) for p in procs)


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


async def _dispatch_burst(settings: Any, db: Any, opts: Options) -> PartResult:
    from sqlalchemy import update

    from scheduler.dispatch import Dispatcher
    from scheduler.models import Post
    from scheduler.storage import posts as post_store

    dispatcher = Dispatcher(settings, db)
    dispatcher.reload_channels()  # as Service.run does at start-up
    dispatcher.start()
    scheduled = time.time() + opts.lead
    with db.engine.begin() as conn:
        conn.execute(update(Post).values(scheduled_at=dt.datetime.fromtimestamp(scheduled, dt.UTC)))
        if conn.dialect.name == "postgresql":  # a Core write: tell the other processes (they arm a timer for T)
            from scheduler.storage.wakeup import notify_due

            notify_due(conn)

    async def poll() -> None:  # the service's interval dispatch job
        while True:
            await asyncio.sleep(settings.poll_seconds)
            await dispatcher.tick()

    poller = asyncio.create_task(poll())
    profiler = None
    # Read before T: reading every process's /proc entry takes a few ms, and the server is idle till T.
    on_pg = db.engine.dialect.name == "postgresql"
    pg0 = postgres_cpu_seconds() if on_pg else None
    await asyncio.sleep(scheduled - time.time())
    calls = count_db_calls(db.engine)
    rss0, cpu0, box0 = rss_mb(), time.process_time(), box_busy_seconds(exclude=os.getppid())
    if opts.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    await dispatcher.tick()  # the service's dispatch-wake job fires at T
    deadline = time.time() + opts.timeout
    if opts.workers == 1:
        while dispatcher.published < opts.posts and time.time() < deadline:
            await asyncio.sleep(0.005)
    else:  # the other processes publish too: count in the database
        from sqlalchemy import func, select

        def published() -> int:
            with db.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(Post)
                                        .where(Post.status == "published")).scalar() or 0)

        while published() < opts.posts and time.time() < deadline:
            await asyncio.sleep(0.05)
    poller.cancel()
    await dispatcher.drain()  # writes the last results
    done, cpu = time.time(), time.process_time() - cpu0
    box = delta(box0, box_busy_seconds(exclude=os.getppid()))  # the bench waiting on us is not
    pg = delta(pg0, postgres_cpu_seconds() if on_pg else None)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(opts.profile)
    with db.session() as session:
        statuses = post_store.counts_by_status(session)
    return PartResult("dispatcher", opts.posts, statuses.get("published", 0), scheduled, done, cpu, rss0,
                      peak_rss_mb(), statuses=statuses, db_calls=calls, db_cpu_seconds=pg, box_cpu_seconds=box)


def count_db_calls(engine: Any) -> dict[str, list[float]]:
    """From now on, count the engine's statements (by kind), pool checkouts and commits and the
    wall time they block the event loop: the round trips of a burst, a figure cProfile hides."""
    from sqlalchemy import event

    calls: dict[str, list[float]] = {}

    def add(kind: str, seconds: float) -> None:
        c = calls.setdefault(kind, [0, 0.0])
        c[0] += 1
        c[1] += seconds

    def kind_of(sql: str) -> str:
        words = sql.split()
        head = " ".join(words[:1]).upper()
        table = next((w for w in words if w in ("posts", "channels", "history", "heartbeats")), "")
        if head == "WITH" and "FROM unnest" in sql:
            return "WITH … UPDATE posts, UPDATE history FROM unnest (results)"
        if head == "WITH" and "INSERT INTO history" in sql:
            return "WITH claimed AS (UPDATE posts …), attempts AS (INSERT history …)"
        if head == "SELECT" and "FOR NO KEY UPDATE" in sql:
            return "SELECT … channels FOR NO KEY UPDATE (claim: lock)"
        if head == "SELECT" and "FROM history" in sql:
            table = "history"
        return f"{head} {table}".strip()

    def before(conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        context._bench_t0 = time.perf_counter()

    def after(conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, many: bool) -> None:
        add(kind_of(sql) + (" (executemany)" if many else ""), time.perf_counter() - context._bench_t0)

    def timed(kind: str, fn: Any) -> Any:
        def run(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                add(kind, time.perf_counter() - t0)
        return run

    dialect = engine.dialect  # instance attributes win over the dialect's methods
    dialect.do_commit = timed("COMMIT", dialect.do_commit)
    dialect.do_ping = timed("ping (a checkout after IDLE_PING_SECONDS idle)", dialect.do_ping)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    return calls


def db_calls_report(calls: dict[str, list[float]], posts: int) -> list[str]:
    total = sum(s for _, s in calls.values())
    lines = [f"dispatcher's database calls from T: {sum(int(n) for n, _ in calls.values()):,} "
             f"({sum(int(n) for n, _ in calls.values()) / max(1, posts):.2f} per post), "
             f"{total:.2f} s of the event loop's time"]
    for kind, (n, secs) in sorted(calls.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"  {kind:<58} {int(n):>6} calls {secs * 1000:>9.1f} ms  ({secs * 1000 / max(1, n):.2f} ms each)")
    return lines


RUNNERS = {"floor": run_floor, "gated": run_gated_floor, "aiohttp": run_aiohttp_floor, "dispatcher": run_dispatcher,
           "baseline": run_baseline}


def run_part_isolated(name: str, opts: Options, fake: Fake) -> PartResult:
    """Run one part in a fresh child process (its own CPU time and peak RSS)."""
    fake.records()
    cpu0 = fake.cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, "-m", "bench.burst", "--child", name, "--child-url", fake.url,
                        "--child-out", str(out), "--child-options", json.dumps(dataclasses.asdict(opts))],
                       cwd=ROOT, check=True)
        result = PartResult(**json.loads(out.read_text()))
    result.fake_cpu_seconds = fake.cpu_seconds() - cpu0
    return _with_records(result, fake.records())


def _with_records(result: PartResult, records: list[tuple[float, str, str]]) -> PartResult:
    result.lateness = [t - result.scheduled_at for t, _, _ in records]
    result.paths = [path for _, path, _ in records]
    keys = [k for _, _, k in records]
    result.duplicates = len(keys) - len(set(keys))
    return result


# --- output -----------------------------------------------------------------------------

def report(results: dict[str, PartResult], opts: Options) -> str:
    db = "PostgreSQL" if opts.database_url else "SQLite (temp file)"
    lines = [
        f"burst: {opts.posts} posts due at once, one per channel; fake platform latency {opts.latency_ms:g} ms; "
        f"{opts.clients} clients x {opts.connections} connections; {db}; {os.cpu_count()} CPUs",
        f"{'part':<11} {'published':>11} {'all done':>9} {'p50':>8} {'p95':>8} {'p99':>8} "
        f"{'CPU/post':>9} {'peak RSS':>9} {'fake CPU/req':>12}",
    ]
    for r in results.values():
        lines.append(
            f"{r.name:<11} {f'{r.published}/{r.posts}':>11} {r.total:>8.2f}s {r.pct(50):>7.2f}s {r.pct(95):>7.2f}s "
            f"{r.pct(99):>7.2f}s {r.cpu_per_post_ms:>7.2f}ms {r.rss_peak_mb:>7.0f}MB "
            f"{1000 * r.fake_cpu_seconds / max(1, len(r.lateness)):>10.2f}ms")
    d, b = results.get("dispatcher"), results.get("baseline")
    if d:
        extra = f"statuses {d.statuses}; duplicate sends {d.duplicates}; RSS at T {d.rss_start_mb:.0f} MB"
        lines.append(f"dispatcher: {extra}")
        if d.db_calls:
            lines += db_calls_report(d.db_calls, d.posts)
        lines.append(f"targets: p99 lateness {d.pct(99):.2f} s (<= 3 s): {_yes(d.pct(99) <= 3)}; "
                     f"CPU {d.cpu_per_post_ms:.2f} ms/post (<= 3 ms): {_yes(d.cpu_per_post_ms <= 3)}; "
                     f"all published: {_yes(d.published == d.posts)}")
    floors = [results[name] for name in FLOORS if name in results]
    fastest = min(floors, key=lambda r: r.total) if floors else None
    if fastest is not None:
        lines.append(f"fastest plain client (the floor): {fastest.name}, {fastest.total:.2f} s")
    for floor in floors:
        if d and floor:
            ratio = d.total / floor.total
            lines.append(f"dispatcher / {floor.name}: {ratio:.2f}x total time (<= 1.5x: {_yes(ratio <= 1.5)}), "
                         f"{d.cpu_per_post_ms / floor.cpu_per_post_ms:.2f}x CPU per post")
    if d and b:
        ratio = b.total / d.total
        lines.append(f"baseline / dispatcher: {ratio:.1f}x total time (>= 8x: {_yes(ratio >= 8)})")
    return "\n".join(lines)


def run_matrix(opts: Options, fake: Fake, workers: Sequence[int]) -> str:
    """The plain clients, then the dispatcher on SQLite (one process) and on PostgreSQL with each
    number of processes in ``workers``, all against the same fake platform in one run."""
    results: dict[str, PartResult] = {}
    for name in FLOORS:
        print(f"running {name} …", file=sys.stderr, flush=True)
        results[name] = run_part_isolated(name, opts, fake)
    runs = [("SQLite x1", dataclasses.replace(opts, database_url=None, workers=1))]
    runs += [(f"PostgreSQL x{n}", dataclasses.replace(opts, workers=n)) for n in workers]
    for label, run_opts in runs:
        print(f"running dispatcher, {label} …", file=sys.stderr, flush=True)
        result = run_part_isolated("dispatcher", run_opts, fake)
        result.name = label
        results[label] = result
    return matrix_report(results, opts, workers)


def matrix_report(results: dict[str, PartResult], opts: Options, workers: Sequence[int],
                  cores: int | None = None) -> str:
    """The matrix's figures: every run, the CPU of each dispatcher run, the ratios and, for each
    PostgreSQL run with more than one process, the ceiling this machine's ``cores`` allow."""
    cores = cores or os.cpu_count() or 1
    labels = ["SQLite x1"] + [f"PostgreSQL x{n}" for n in workers]
    lines = [f"burst matrix: {opts.posts} posts due at once, one per channel; fake latency {opts.latency_ms:g} ms "
             f"(own process); {opts.clients} clients x {opts.connections} connections; {os.cpu_count()} CPUs",
             f"{'run':<16} {'published':>11} {'all done':>9} {'p50':>8} {'p99':>8} {'CPU/post':>9} {'dup':>4}"]
    for r in results.values():
        lines.append(f"{r.name:<16} {f'{r.published}/{r.posts}':>11} {r.total:>8.2f}s {r.pct(50):>7.2f}s "
                     f"{r.pct(99):>7.2f}s {r.cpu_per_post_ms:>7.2f}ms {r.duplicates:>4}")
    lines += cpu_table([results[label] for label in labels], cores)
    fastest = min((results[n] for n in FLOORS), key=lambda r: r.total)
    lines.append(f"floor = fastest plain client: {fastest.name} {fastest.total:.2f} s")
    for label in labels:
        lines.append(f"{label} / floor: {results[label].total / fastest.total:.2f}x")
    sqlite, pg1 = results["SQLite x1"], results.get("PostgreSQL x1")
    if pg1 is not None:
        ratio = pg1.total / sqlite.total
        lines.append(f"PostgreSQL x1 / SQLite x1: {ratio:.2f}x (<= 1.3x: {_yes(ratio <= 1.3)})")
        for n in workers:
            if n > 1:
                speedup = pg1.total / results[f"PostgreSQL x{n}"].total
                lines.append(f"PostgreSQL x{n} speed-up over x1: {speedup:.2f}x"
                             + (f" (>= 1.8x: {_yes(speedup >= 1.8)})" if n == 4 else ""))
        lines += [ceiling(pg1, results[f"PostgreSQL x{n}"], fastest.total, cores).line(f"PostgreSQL x{n}")
                  for n in workers if n > 1]
    note = others_note([results[label] for label in labels], cores)
    if note:
        lines.append(note)
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Burst benchmark: N posts due at the same instant.")
    parser.add_argument("--posts", type=int, default=2570, help="posts (= channels), default 2570")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="fake platform latency (100)")
    parser.add_argument("--clients", type=int, default=64, help="sharded httpx clients (PROMO_HTTP_CLIENTS)")
    parser.add_argument("--connections", type=int, default=4,
                        help="connections per client (PROMO_HTTP_CONNECTIONS)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the naive baseline")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--database-url", help="PostgreSQL URL (a throw-away schema is used); default SQLite")
    parser.add_argument("--log-level", default="INFO", help="dispatcher log level (the service's default INFO)")
    parser.add_argument("--profile", help="write a cProfile of the dispatcher part here (.prof)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on a part after this long")
    parser.add_argument("--workers", type=int, default=1,
                        help="dispatch processes (PROMO_WORKERS): the extra ones are real "
                             "`promo serve --dispatch-only` processes; their CPU is added")
    parser.add_argument("--matrix", metavar="N[,N…]",
                        help="with --database-url: the plain clients, the dispatcher on SQLite, then on PostgreSQL "
                             "with each number of processes (e.g. 1,2,4), in one run")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--child-options", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_fake:
        serve_fake(args.latency_ms)
        return 0
    if args.child:
        opts = Options(**json.loads(args.child_options))
        result = RUNNERS[args.child](opts, args.child_url)
        Path(args.child_out).write_text(json.dumps(dataclasses.asdict(result)))
        return 0

    opts = Options(posts=args.posts, latency_ms=args.latency_ms, clients=args.clients,
                   connections=args.connections, database_url=args.database_url, timeout=args.timeout,
                   log_level=args.log_level.upper(), profile=args.profile, workers=args.workers)
    if args.matrix:
        if not opts.database_url:
            parser.error("--matrix needs --database-url (the PostgreSQL server to compare with SQLite)")
        with Fake(opts.latency_ms) as fake:
            print(run_matrix(opts, fake, [int(n) for n in args.matrix.split(",")]))
        return 0
    parts = args.only or [p for p in PARTS if not (p == "baseline" and args.skip_baseline)]
    results: dict[str, PartResult] = {}
    with Fake(opts.latency_ms) as fake:
        for name in parts:
            print(f"running {name} …", file=sys.stderr, flush=True)
            results[name] = run_part_isolated(name, opts, fake)
    print(report(results, opts))
    if opts.profile and "dispatcher" in results:
        print(profile_summary(opts.profile))
    return 0


#: Where own CPU time goes in the profile, by the path of the code that spent it.
PROFILE_GROUPS = (("/scheduler/", "scheduler (ours)"), ("/sqlalchemy/", "sqlalchemy"), ("/httpx/", "httpx"),
                  ("/httpcore/", "httpcore"), ("/h11/", "h11"), ("/anyio/", "anyio"), ("asyncio", "asyncio"),
                  ("logging", "logging"), ("importlib", "imports"))


def profile_summary(path: str, top: int = 20) -> str:
    """Own time of the profiled dispatcher part grouped by library, then the top functions."""
    import io
    import pstats

    stats = pstats.Stats(path)
    groups: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{function}"
        group = next((name for needle, name in PROFILE_GROUPS if needle in where), "other (C calls, sockets)")
        groups[group] = groups.get(group, 0.0) + own
    total = sum(groups.values()) or 1.0
    lines = [f"\nprofile of the dispatcher part ({path}; cProfile slows it down, so shares only):"]
    lines += [f"  {name:<26} {100 * own / total:5.1f}%" for name, own in sorted(groups.items(), key=lambda g: -g[1])]
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(r"scheduler/", top)
    return "\n".join(lines) + "\n" + out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
