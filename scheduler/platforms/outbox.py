"""The ``outbox`` platform: appends one JSON object per post to a JSON-lines file.

The default channel: needs no credentials, and makes a dry run or an archive easy to read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

from scheduler.errors import Transient
from scheduler.platforms.base import (
    ALWAYS,
    Adapter,
    KeyDoc,
    PlatformRules,
    PublishResult,
    ReadyPost,
    no_metrics,
)
from scheduler.textrules import TextRule


class _Index:
    """Idempotency keys already in an outbox file, read incrementally.

    Only the bytes appended since the last look are read (by any process: the file is the
    truth), so checking a key stays cheap however long the outbox grows.
    """

    def __init__(self) -> None:
        self.offset = 0
        self.lines = 0
        self.keys: dict[str, int] = {}  # key → line number

    def catch_up(self, fh: Any) -> None:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < self.offset:  # truncated or replaced: start over
            self.offset, self.lines, self.keys = 0, 0, {}
        fh.seek(self.offset)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a line still being written; read it next time
            self.offset += len(raw)
            self.lines += 1
            try:
                key = json.loads(raw).get("idempotency_key")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                continue
            if key:
                self.keys.setdefault(key, self.lines)


_indexes: dict[Path, _Index] = {}
_lock = threading.Lock()


def _index(path: Path) -> _Index:
    with _lock:
        return _indexes.setdefault(path.resolve(), _Index())


def _append_once(path: Path, key: str, line: str) -> tuple[int, bool]:
    """Append ``line`` unless ``key`` is already in the file: (line number, appended?)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    index = _index(path)
    with open(path, "ab+") as fh, _lock:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            index.catch_up(fh)
            if key in index.keys:
                return index.keys[key], False
            data = (line + "\n").encode()
            fh.seek(0, os.SEEK_END)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            index.offset += len(data)
            index.lines += 1
            index.keys[key] = index.lines
            return index.lines, True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _find_key(path: Path, key: str) -> int | None:
    if not path.exists():
        return None
    index = _index(path)
    with open(path, "rb") as fh, _lock:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            index.catch_up(fh)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
        return index.keys.get(key)


class OutboxAdapter(Adapter):
    platform = "outbox"
    rules = PlatformRules(text=(TextRule(10_000, "graphemes"),), can_reconcile=True,
                          idempotent_for=ALWAYS)
    required_keys = ((),)
    optional_keys = ("PATH",)
    help = "Appends each post as a JSON line to PATH (default outbox.jsonl). No credentials."

    #: Writes a local file: no platform budget.
    budget = ()
    token_keys = ()
    metrics = no_metrics("a file has no audience")
    doc_title = "Outbox (platform=outbox): appends each post as one JSON line to a file. No credentials."
    doc_setup = ""
    doc_channel = "OUTBOX"
    key_docs = {
        "PLATFORM": KeyDoc(example="outbox", active=True),
        "PATH": KeyDoc("File the posts are appended to.", example="outbox.jsonl", active=True),
        "SLOTS": KeyDoc("Slots for --queue (with PROMO_CHANNELS unset, the default outbox channel has 09:00,12:00,19:00).", example="09:00,12:30,19:00"),
        "SLOTS_SAT": KeyDoc(example="10:00"),
        "TIMEZONE": KeyDoc(example="Asia/Makassar"),
        "BASE_URL": KeyDoc(),
    }

    @property
    def path(self) -> Path:
        return Path(self.option("PATH", "outbox.jsonl") or "outbox.jsonl")

    async def publish(self, post: ReadyPost) -> PublishResult:
        record = {
            "channel": self.ctx.name,
            "post_id": post.post_id,
            "idempotency_key": post.idempotency_key,
            "published_at": dt.datetime.now(dt.UTC).isoformat(),
            "text": post.text,
            "link": post.link,
            "image": str(post.image.path) if post.image else None,
        }
        try:
            # Writing the same idempotency key twice would be a duplicate: the check and the
            # append happen under one file lock.
            number, _ = await asyncio.to_thread(_append_once, self.path, post.idempotency_key,
                                                json.dumps(record, ensure_ascii=False))
        except OSError as exc:
            raise Transient(f"cannot write outbox {self.path}: {exc.strerror}") from None
        return PublishResult(remote_id=str(number), remote_url=f"{self.path}#L{number}")

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        existing = await asyncio.to_thread(_find_key, self.path, post.idempotency_key)
        if existing is None:
            return None
        return PublishResult(remote_id=str(existing), remote_url=f"{self.path}#L{existing}")

    async def check(self) -> str:
        parent = self.path.resolve().parent
        if not parent.exists() or not os.access(parent, os.W_OK):
            raise Transient(f"outbox folder {parent} is not writable")
        return f"outbox file {self.path}"
