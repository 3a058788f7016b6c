"""The staff web app at scale: page and API times, and whether page loads delay a due post.

    .venv/bin/python -m bench.web                                  # 100k posts, 1M history rows
    .venv/bin/python -m bench.web --posts 10000 --history 100000 --burst 50

One SQLite database is filled with bulk statements (bench/scale.py's generator: ``--posts``
queued posts, ``--history`` history rows) plus an admin with a password and an API token.

Pages: ``promo web`` (a real uvicorn) on 127.0.0.1 over that database; each address is
fetched once to warm up, then ``--runs`` times, and the median round trip is reported (the
history page and ``/api/v1/history`` first page and a page ``--depth`` rows deep, the calendar
month with the most posts, ``POST /api/v1/preview``), with the session cookie or the token.

Serve: ``promo serve --web`` on a copy of the database, with ``--burst`` webhook channels
pointing at the fake platform (tests/fakeplatform.py, in its own process) and one post due on
each a few seconds after the service is up. Run twice in this command: quietly, and with
``--clients`` threads loading dashboard pages (history, calendar, today, the API) from before
the posts are due until the last one arrived. Lateness = the fake's receive time − due time;
its median and p99 are reported for both runs and as a ratio. Not a test; tests never assert
timings (tests/integration/test_bench_smoke.py runs this at tiny sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from bench import burst, scale
from scheduler.models import HistoryEntry, Post
from scheduler.storage import accounts
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, add_user, free_port, log_in

ROOT = Path(__file__).resolve().parents[1]
TARGETS_MS: dict[str, int | None] = {
    "history page (first)": 100, "history page (deep)": 100, "/api/v1/history first page": 100,
    "/api/v1/history deep page": 100, "calendar month": 150, "POST /api/v1/preview": 50,
    # the compose page's preview with an image chosen: fitted once for Instagram when chosen (no target:
    # a photo's resizing), then each preview as the caption is typed reads what was fitted
    # the same channels, as a caption but no image chosen; then a new image; then one already fitted
    "POST /api/v1/preview, outbox+ig": 50, "POST /api/v1/preview, new image": None,
    "POST /api/v1/preview + image": 50}
#: The photo the image previews send (JPEG, 4:3; Instagram scales it to 1440 px wide).
PHOTO_SIZE = (3000, 2250)


@dataclass
class Options:
    posts: int = 100_000
    history: int = 1_000_000
    depth: int = 500_000
    runs: int = 9
    burst: int = 200
    clients: int = 4
    rounds: int = 1
    lead: float = 3.0
    timeout: float = 120.0


@dataclass
class Result:
    generate: str = ""
    pages_ms: dict[str, float] = field(default_factory=dict)
    lateness: dict[str, list[float]] = field(default_factory=dict)
    page_loads: int = 0
    #: Seconds each of those page loads took (round trip), for their mean.
    page_times: list[float] = field(default_factory=list)


def env_for(db_url: str, tmp: Path) -> dict[str, str]:
    return {**os.environ, "PROMO_DATABASE_URL": db_url, "PROMO_SECRET_KEY": burst.SECRET_KEY,
            "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
            "PROMO_TEMPLATES_DIR": str(ROOT / "templates"), "PROMO_ENV_FILE": str(tmp / "none.env"),
            "PROMO_POLL_SECONDS": "0.5", "PROMO_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}


def user_token(db: Database, role: str) -> str:
    """The benchmark's user "ana" with ``role``, and an API token of hers."""
    add_user(db, "ana", role)
    with db.session() as session:
        return accounts.create_token(session, "ana", "bench")[1]


def generate(path: Path, o: Options) -> tuple[str, str]:
    """The filled database at ``path``; (the API token, a description of what it took)."""
    t0 = time.perf_counter()
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
        scale.fill(db, scale.Options(posts=o.posts, history=o.history, due=5))
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        token = user_token(db, "admin")
    finally:
        db.dispose()
    return token, f"{time.perf_counter() - t0:.1f} s for {o.posts:,} posts + {o.history:,} history rows"


@contextmanager
def serving(args: list[str], env: dict[str, str], tmp: Path, port: int,
            started: list[subprocess.Popen[bytes]] | None = None) -> Iterator[str]:
    """``promo ARGS`` in a child process until the web app answers on ``port``; its base URL
    (the process is appended to ``started`` if given: its CPU time can be read)."""
    log = open(tmp / f"{args[0]}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", *args, "--port", str(port)], cwd=tmp,
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    if started is not None:
        started.append(proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/login", trust_env=False, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"promo {args[0]} did not start: {(tmp / f'{args[0]}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        scale.stop(proc)
        log.close()


def timed_ms(fn: Callable[[], httpx.Response], runs: int) -> float:
    """Median milliseconds of ``runs`` round trips (after one warm-up); each must answer 200."""
    def once() -> float:
        start = time.perf_counter()
        answer = fn()
        took = time.perf_counter() - start
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.request.url}: {answer.status_code} {answer.text[:300]}")
        return took
    once()
    return 1000 * statistics.median(once() for _ in range(runs))


def busiest_month(db_path: Path) -> str:
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.read_session() as s:
            first = s.scalar(select(func.min(Post.scheduled_at)))
    finally:
        db.dispose()
    return (first or dt.datetime.now(dt.UTC)).strftime("%Y-%m-15")


def deep_cursor(db_path: Path, depth: int) -> int:
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.read_session() as s:
            top = s.scalar(select(func.max(HistoryEntry.id))) or 0
    finally:
        db.dispose()
    return max(1, top - depth + 1)


def measure_pages(db_path: Path, token: str, o: Options, tmp: Path) -> dict[str, float]:
    env = {**env_for(f"sqlite:///{db_path}", tmp), "PROMO_CHANNELS": "outbox,ig", "PROMO_MEDIA_DIR": str(tmp / "media"),
           "PROMO_CHANNEL_IG_PLATFORM": "instagram", "PROMO_CHANNEL_IG_IG_USER_ID": "17841400000000",
           "PROMO_CHANNEL_IG_ACCESS_TOKEN": "ig-token-value-123456"}
    after = deep_cursor(db_path, min(o.depth, max(0, o.history - 50)))
    month = busiest_month(db_path)
    bearer = {"Authorization": f"Bearer {token}"}
    preview = {"channels": ["outbox"], "source": "text", "link": "https://umkm.example.id/p/1",
               "text": burst.post_text(1)}
    with serving(["web"], env, tmp, free_port()) as url, \
            httpx.Client(base_url=url, trust_env=False, timeout=60) as page, \
            httpx.Client(base_url=url, trust_env=False, timeout=60, headers=bearer) as api:
        log_in(page, "ana", PASSWORD)
        photos = iter([sent_photo(api, i) for i in range(o.runs + 1)])  # each a new image: fitted when asked
        with_image = {**preview, "channels": ["outbox", "ig"], "image_id": sent_photo(api, o.runs + 1)}
        return {
            "history page (first)": timed_ms(lambda: page.get("/history?all=1"), o.runs),
            "history page (deep)": timed_ms(lambda: page.get(f"/history?all=1&after={after}"), o.runs),
            "/api/v1/history first page": timed_ms(lambda: api.get("/api/v1/history?all=1&page=1"), o.runs),
            "/api/v1/history deep page": timed_ms(lambda: api.get(f"/api/v1/history?all=1&after={after}"), o.runs),
            "calendar month": timed_ms(lambda: page.get(f"/calendar?view=month&date={month}"), o.runs),
            "POST /api/v1/preview": timed_ms(lambda: api.post("/api/v1/preview", json=preview), o.runs),
            "POST /api/v1/preview, outbox+ig": timed_ms(lambda: api.post("/api/v1/preview", json={
                **preview, "channels": ["outbox", "ig"], "image": True}), o.runs),
            "POST /api/v1/preview, new image": timed_ms(lambda: api.post("/api/v1/preview", json={
                **with_image, "image_id": next(photos)}), o.runs),
            "POST /api/v1/preview + image": timed_ms(lambda: api.post("/api/v1/preview", json=with_image), o.runs),
        }


def sent_photo(api: httpx.Client, seed: int) -> str:
    """A new photo-like JPEG (noise over a gradient, so it does not compress to nothing) sent to
    /api/v1/images; its id."""
    from PIL import Image

    w, h = PHOTO_SIZE
    img = Image.merge("RGB", (Image.linear_gradient("L").resize((w, h)), Image.effect_noise((w, h), 40 + seed),
                              Image.linear_gradient("L").rotate(90).resize((w, h))))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    answer = api.post("/api/v1/images", files={"image": (f"photo-{seed}.jpg", out.getvalue(), "image/jpeg")})
    if answer.status_code != 201:
        raise RuntimeError(f"/api/v1/images: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


def serve_run(base: Path, token: str, o: Options, fake: burst.Fake, loaded: bool, stats: Result) -> list[float]:
    """One ``promo serve --web`` run; the lateness (seconds) of each of the ``--burst`` posts."""
    tmp = Path(tempfile.mkdtemp(prefix="promo-webbench-serve-"))
    try:
        db_path = tmp / "promo.db"
        shutil.copyfile(base, db_path)
        db = Database(f"sqlite:///{db_path}")
        try:
            burst.load_burst(db, fake.url, o.burst, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            fake.records()  # forget earlier runs' records
            month = busiest_month(db_path)
            with serving(["serve", "--web", "--health-port", "0"], env_for(f"sqlite:///{db_path}", tmp), tmp,
                         free_port()) as url:
                due = time.time() + o.lead
                with db.engine.begin() as conn:
                    conn.execute(update(Post).where(Post.kind == "daily_highlight")
                                 .values(scheduled_at=dt.datetime.fromtimestamp(due, dt.UTC)))
                stop = threading.Event()
                loads: list[float] = []
                threads = [threading.Thread(target=load_pages, args=(url, token, month, stop, loads), daemon=True)
                           for _ in range(o.clients if loaded else 0)]
                for t in threads:
                    t.start()
                records: list[tuple[float, str, str]] = []
                deadline = time.time() + o.lead + o.timeout
                while len(records) < o.burst and time.time() < deadline:
                    time.sleep(0.2)
                    records += fake.records()
                stop.set()
                for t in threads:
                    t.join(60)
                if loaded:
                    stats.page_loads += len(loads)
                    stats.page_times += loads
                if len(records) < o.burst:
                    raise RuntimeError(f"only {len(records)} of {o.burst} posts arrived within {o.timeout} s")
                return [t - due for t, _, _ in records]
        finally:
            db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_pages(url: str, token: str, month: str, stop: threading.Event, loads: list[float]) -> None:
    """Dashboard page loads, one after another, until ``stop``; each one's round trip (s) into ``loads``."""
    addresses = ["/", "/history?all=1", f"/calendar?view=month&date={month}", "/posts", "/api/v1/history?page=1",
                 "/api/v1/status"]
    with httpx.Client(base_url=url, trust_env=False, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            client.get(addresses[i % len(addresses)])
            loads.append(time.perf_counter() - start)
            i += 1


def run(o: Options) -> Result:
    result = Result()
    tmp = Path(tempfile.mkdtemp(prefix="promo-webbench-"))
    try:
        base = tmp / "base.db"
        token, result.generate = generate(base, o)
        result.pages_ms = measure_pages(base, token, o, tmp)
        with burst.Fake(latency_ms=20) as fake:
            result.lateness = {"quiet": [], "page loads": []}
            for _ in range(o.rounds):  # alternated, so a change in the machine's load hits both
                result.lateness["quiet"] += serve_run(base, token, o, fake, False, result)
                result.lateness["page loads"] += serve_run(base, token, o, fake, True, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def report(r: Result, o: Options) -> str:
    lines = [f"web app bench: SQLite, {o.posts:,} posts, {o.history:,} history rows "
             f"(cores: {os.cpu_count()}; numbers are as measured on this machine)",
             f"generate: {r.generate}"]
    for name, ms in r.pages_ms.items():
        target = TARGETS_MS.get(name)
        verdict = f" (target < {target} ms: {'yes' if ms < target else 'NO'})" if target else ""
        lines.append(f"  {name:<30} {ms:8.1f} ms median of {o.runs}{verdict}")
    lines.append(f"promo serve --web, {o.burst} posts due at once"
                 + (f", {o.rounds} rounds of each (all posts pooled)" if o.rounds > 1 else "")
                 + ", lateness (fake's receive time - due time):")
    for name, late in r.lateness.items():
        lines.append(f"  {name:<12} p50 {burst.percentile(late, 50):6.3f} s  p99 {burst.percentile(late, 99):6.3f} s"
                     + (f"  ({r.page_loads:,} page loads by {o.clients} clients meanwhile, mean "
                        f"{1000 * statistics.fmean(r.page_times or [0]):.0f} ms)" if name != "quiet" else ""))
    if len(r.lateness) == 2:
        quiet, busy = r.lateness["quiet"], r.lateness["page loads"]
        for p in (50, 99):
            q, b = burst.percentile(quiet, p), burst.percentile(busy, p)
            lines.append(f"  ratio p{p} page loads / quiet: {b / q if q > 0 else float('nan'):.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.web", description=__doc__.split("\n\n")[0] if __doc__ else None)
    d = Options()
    p.add_argument("--posts", type=int, default=d.posts, help="queued posts in the database")
    p.add_argument("--history", type=int, default=d.history, help="history rows in the database")
    p.add_argument("--depth", type=int, default=d.depth, help="rows deep for the deep history page")
    p.add_argument("--runs", type=int, default=d.runs, help="timed round trips per address (median)")
    p.add_argument("--burst", type=int, default=d.burst, help="posts due at once in the serve runs")
    p.add_argument("--clients", type=int, default=d.clients, help="threads loading pages in the loaded run")
    p.add_argument("--rounds", type=int, default=d.rounds,
                   help="quiet and loaded serve runs, alternated, this many times each (pooled: less noise)")
    a = p.parse_args(argv)
    o = Options(posts=a.posts, history=a.history, depth=a.depth, runs=a.runs, burst=a.burst, clients=a.clients,
                rounds=a.rounds)
    print(report(run(o), o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
