"""The ``outbox`` platform: appends one JSON object per post to a JSON-lines file.

The default channel: needs no credentials, and makes a dry run or an archive easy to read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import os
from pathlib import Path

from scheduler.errors import Transient
from scheduler.platforms.base import Adapter, PlatformRules, PublishResult, ReadyPost
from scheduler.textrules import TextRule


def _append_line(path: Path, line: str) -> int:
    """Append one line under an exclusive lock; return the line number it landed on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            number = sum(1 for _ in fh) + 1
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return number


def _find_key(path: Path, key: str) -> int | None:
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if key in line:
                try:
                    if json.loads(line).get("idempotency_key") == key:
                        return number
                except json.JSONDecodeError:
                    continue
    return None


class OutboxAdapter(Adapter):
    platform = "outbox"
    rules = PlatformRules(text=(TextRule(10_000, "graphemes"),), can_reconcile=True, idempotent=True)
    required_keys = ((),)
    optional_keys = ("PATH",)
    help = "Appends each post as a JSON line to PATH (default outbox.jsonl). No credentials."

    @property
    def path(self) -> Path:
        return Path(self.option("PATH", "outbox.jsonl") or "outbox.jsonl")

    async def publish(self, post: ReadyPost) -> PublishResult:
        # Writing the same idempotency key twice would be a duplicate: look first.
        existing = await asyncio.to_thread(_find_key, self.path, post.idempotency_key)
        if existing is not None:
            return PublishResult(remote_id=str(existing), remote_url=f"{self.path}#L{existing}")
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
            number = await asyncio.to_thread(_append_line, self.path, json.dumps(record, ensure_ascii=False))
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
