"""A fake social platform: a real HTTP/1.1 server on 127.0.0.1 that misbehaves on request.

It speaks the ``webhook`` platform's protocol (a JSON ``POST`` with an ``Idempotency-Key``
header, answered ``200 {"id": …, "url": …}``) on any path, so each channel of a test is
``PROMO_CHANNEL_<N>_PLATFORM=webhook`` with ``…_URL=fake.url("<channel-path>")``.

Per path (or for every path) it can be told to answer slowly, answer 5xx, answer 429 with
``Retry-After`` (in bursts), hold a request and then drop the connection (a timeout after
receipt), reset the connection, answer 401, and to honour the idempotency key the way
Mastodon does (same key → the stored post again, not a new one). Faults are drawn from a
seeded random generator per path, so a path's sequence of answers does not depend on how
requests of other paths interleave.

``GET /<path>?idempotency_key=K`` looks a post up (200 with its id, or 404), for adapters
that reconcile. Engagement reads answer counters the way Mastodon (``GET …/api/v1/statuses/ID``)
and X (``GET …/2/tweets?ids=A,B``) do; each is recorded in ``counter_reads``. Everything else it saw is recorded: every request (times, path, key, body, answer) and every
*delivery* (a distinct post created on a path). Used by tests and by ``bench/burst.py``;
it is plain asyncio with keep-alive in a background thread, so hundreds of concurrent
connections are cheap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: The answers the fake can give; ``script()`` takes these names.
ANSWERS = ("ok", "5xx", "429", "timeout", "reset", "401")


@dataclass
class Behaviour:
    """How a path answers. Probabilities are drawn in the order 401, 429, 5xx, timeout, reset."""

    latency: float = 0.0  #: seconds before answering (the post is created first, like a slow platform)
    p_5xx: float = 0.0
    p_timeout: float = 0.0  #: hold the request, never answer, drop the connection
    p_reset: float = 0.0  #: reset the connection (TCP RST) after reading the request
    p_429: float = 0.0  #: start a burst of 429 answers
    p_401: float = 0.0
    burst_429: int = 1  #: how many consecutive POSTs a 429 burst answers with 429
    retry_after: float = 1.0  #: the Retry-After value (seconds) sent with a 429
    statuses_5xx: tuple[int, ...] = (500, 502, 503)
    #: Honour Idempotency-Key (same key on the same path → the stored post, no new one).
    idempotent: bool = True
    #: Chance that a request which is then timed out or reset was processed anyway.
    drop_delivers: float = 0.5
    hold_max: float = 30.0  #: longest a timed-out request is held (until the client gives up)
    unauthorized: bool = False  #: answer 401 to everything (HEAD included): revoked credentials


@dataclass
class Delivery:
    """A distinct post the platform created."""

    id: str
    path: str
    key: str | None
    body: Any
    at: float


@dataclass
class Request:
    """One request the fake received, and what it did with it."""

    seq: int
    path: str
    method: str
    key: str | None
    body: Any
    received_at: float  #: time.time() once the whole request was read
    answer: str = ""  #: one of ANSWERS ("ok" also for HEAD/GET)
    status: int | None = None  #: HTTP status sent (None when the connection was dropped)
    retry_after: float | None = None
    delivery: str | None = None  #: the delivery id this request created or returned
    new_delivery: bool = False  #: True when this request created a post
    answered_at: float | None = None  #: time.time() just before the answer was written
    finished_at: float | None = None  #: answer written, or connection dropped / seen closed


def _norm(path: str) -> str:
    path = path.split("?", 1)[0]
    return "/" + path.lstrip("/")


class FakePlatform:
    """The server. ``with FakePlatform(seed=1) as fake: … fake.url("ch1") …``."""

    def __init__(self, seed: int = 0, host: str = "127.0.0.1"):
        self.seed = seed
        self.host = host
        self.port = 0
        self.default = Behaviour()
        self._behaviours: dict[str, Behaviour] = {}
        self._scripts: dict[str | None, deque[str]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._bursts: dict[str, int] = {}
        self._lock = threading.Condition()
        self.requests: list[Request] = []
        self.deliveries: dict[str, list[Delivery]] = {}
        self._by_key: dict[tuple[str, str], Delivery] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = 0
        self.max_open_connections = 0
        #: The target of every engagement read (statuses/ID, tweets?ids=…), in order.
        self.counter_reads: list[str] = []

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> FakePlatform:
        """Start serving on a free port in a background thread."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0, backlog=2048))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fakeplatform", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake platform did not start")
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """The URL a webhook channel posts to for ``path``."""
        return self.base_url + _norm(path)

    def configure(self, path: str | None = None, **fields: Any) -> Behaviour:
        """Change how ``path`` (or, without a path, every path not configured itself) answers."""
        with self._lock:
            if path is None:
                self.default = dataclasses.replace(self.default, **fields)
                return self.default
            p = _norm(path)
            self._behaviours[p] = dataclasses.replace(self._behaviours.get(p, self.default), **fields)
            return self._behaviours[p]

    def script(self, path: str | None, *answers: str) -> None:
        """Queue exact answers for the next POSTs on ``path`` (None: any path), before any draw."""
        for a in answers:
            if a not in ANSWERS:
                raise ValueError(f"unknown answer {a!r}; one of {ANSWERS}")
        with self._lock:
            self._scripts.setdefault(None if path is None else _norm(path), deque()).extend(answers)

    def behaviour(self, path: str) -> Behaviour:
        with self._lock:
            return self._behaviours.get(_norm(path), self.default)

    # --- what it saw ----------------------------------------------------------------------

    def requests_for(self, path: str | None = None, method: str | None = "POST") -> list[Request]:
        """A snapshot of the requests (on one path, of one method), in the order received."""
        with self._lock:
            return [r for r in self.requests
                    if (path is None or r.path == _norm(path)) and (method is None or r.method == method)]

    def deliveries_for(self, path: str) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries.get(_norm(path), []))

    def request_count(self, method: str | None = "POST") -> int:
        with self._lock:
            return sum(1 for r in self.requests if method is None or r.method == method)

    def wait_for(self, predicate: Callable[[FakePlatform], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every request and answer) or timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if predicate(self):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return sorted({r.path for r in self.requests})

    # --- serving ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._open += 1
        self.max_open_connections = max(self.max_open_connections, self._open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) < 2:
                    return
                method, target = parts[0].upper(), parts[1]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                try:
                    raw = await reader.readexactly(length) if length else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if method == "GET" and "idempotency_key=" in target:
                    keep = await self._lookup(target, writer)
                elif method == "GET" and ("/api/v1/statuses/" in target or "/2/tweets?" in target):
                    keep = await self._counters(target, writer)
                else:
                    keep = await self._respond(method, _norm(target), headers, raw, reader, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except asyncio.CancelledError:
            pass
        finally:
            self._open -= 1
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    def _draw(self, path: str, b: Behaviour) -> str:
        """The answer for the next POST on ``path`` (called under the lock)."""
        for key in (path, None):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        if b.unauthorized:
            return "401"
        if self._bursts.get(path, 0) > 0:
            self._bursts[path] -= 1
            return "429"
        rng = self._rngs.setdefault(path, random.Random(f"{self.seed}:{path}"))
        x = rng.random()
        for name, p in (("401", b.p_401), ("429", b.p_429), ("5xx", b.p_5xx), ("timeout", b.p_timeout),
                        ("reset", b.p_reset)):
            if x < p:
                if name == "429":
                    self._bursts[path] = max(0, b.burst_429 - 1)
                return name
            x -= p
        return "ok"

    def _deliver(self, req: Request, b: Behaviour) -> Delivery:
        """Create the post (or, honouring the key, find the one created before)."""
        if b.idempotent and req.key and (req.path, req.key) in self._by_key:
            d = self._by_key[(req.path, req.key)]
            req.delivery, req.new_delivery = d.id, False
            return d
        existing = self.deliveries.setdefault(req.path, [])
        d = Delivery(id=f"{req.path.strip('/').replace('/', '_')}-{len(existing) + 1}", path=req.path,
                     key=req.key, body=req.body, at=time.time())
        existing.append(d)
        if req.key:
            self._by_key.setdefault((req.path, req.key), d)
        req.delivery, req.new_delivery = d.id, True
        return d

    async def _respond(self, method: str, path: str, headers: dict[str, str], raw: bytes,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self._lock:
            b = self._behaviours.get(path, self.default)
            req = Request(seq=len(self.requests), path=path, method=method, key=headers.get("idempotency-key"),
                          body=body, received_at=time.time())
            self.requests.append(req)
            if method == "POST":
                answer = self._draw(path, b)
            else:
                answer = "401" if b.unauthorized else "ok"
            req.answer = answer
            delivery: Delivery | None = None
            if method == "POST" and (answer == "ok" or (answer in ("timeout", "reset") and self._rngs.setdefault(
                    path, random.Random(f"{self.seed}:{path}")).random() < b.drop_delivers)):
                delivery = self._deliver(req, b)
            self._lock.notify_all()
        if b.latency and answer in ("ok", "5xx", "429", "401"):
            await asyncio.sleep(b.latency)
        if answer == "timeout":
            # Never answer; wait until the client gives up and closes (or hold_max passes).
            try:
                await asyncio.wait_for(reader.read(), timeout=b.hold_max)
            except (TimeoutError, ConnectionError):
                pass
            self._finish(req, None)
            return False
        if answer == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            self._finish(req, None)
            return False
        extra: dict[str, str] = {}
        if answer == "ok":
            status = 200
            payload: dict[str, Any] = {} if delivery is None else {
                "id": delivery.id, "url": f"{self.base_url}{path}/posts/{delivery.id}"}
        elif answer == "5xx":
            rng = self._rngs.setdefault(path, random.Random(f"{self.seed}:{path}"))
            status = rng.choice(b.statuses_5xx)
            payload = {"error": "the platform is having a moment"}
        elif answer == "429":
            status = 429
            ra = b.retry_after
            extra["Retry-After"] = str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
            req.retry_after = float(ra)
            payload = {"error": "slow down"}
        else:
            status = 401
            payload = {"error": "The access token is invalid"}
        data = b"" if method == "HEAD" else json.dumps(payload).encode()
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                + "Connection: keep-alive\r\n\r\n")
        req.answered_at = time.time()
        try:
            writer.write(head.encode() + data)
            await writer.drain()
        except ConnectionError:
            self._finish(req, None)
            return False
        self._finish(req, status)
        return True

    async def _lookup(self, target: str, writer: asyncio.StreamWriter) -> bool:
        """``GET /<path>?idempotency_key=K``: the post created with key K (200) or 404; not recorded."""
        path = _norm(target)
        key = urllib.parse.parse_qs(target.partition("?")[2]).get("idempotency_key", [""])[0]
        with self._lock:
            found = next((d for d in self.deliveries.get(path, []) if d.key == key), None)
        status = 200 if found else 404
        data = json.dumps({"id": found.id, "url": f"{self.base_url}{path}/posts/{found.id}"} if found
                          else {"error": "not found"}).encode()
        writer.write(f"HTTP/1.1 {status} {'OK' if found else 'Not Found'}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        try:
            await writer.drain()
        except ConnectionError:
            return False
        return True

    async def _counters(self, target: str, writer: asyncio.StreamWriter) -> bool:
        """Counters of one Mastodon status or of up to 100 X posts (values derived from the id)."""
        with self._lock:
            self.counter_reads.append(target)
        path, _, query = target.partition("?")
        if "/api/v1/statuses/" in path:
            sid = path.rsplit("/", 1)[-1]
            body: dict[str, Any] = {"id": sid, "favourites_count": len(sid), "reblogs_count": 1, "replies_count": 0}
        else:
            ids = urllib.parse.parse_qs(query).get("ids", [""])[0].split(",")
            body = {"data": [{"id": i, "text": "…", "public_metrics": {
                "retweet_count": 1, "reply_count": 0, "like_count": len(i), "quote_count": 0, "bookmark_count": 0,
                "impression_count": 100}} for i in ids if i]}
        data = json.dumps(body).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        try:
            await writer.drain()
        except ConnectionError:
            return False
        return True

    def _finish(self, req: Request, status: int | None) -> None:
        with self._lock:
            req.status = status
            req.finished_at = time.time()
            self._lock.notify_all()


_REASONS = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def overlapping(requests: Iterable[Request]) -> list[tuple[Request, Request]]:
    """Pairs of requests whose handling overlapped in time (received before the other finished)."""
    ordered = sorted(requests, key=lambda r: r.received_at)
    out = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        end = a.finished_at if a.finished_at is not None else float("inf")
        if b.received_at < end:
            out.append((a, b))
    return out
