"""The web app for tests, served for real: uvicorn on 127.0.0.1, on its own loop in a thread
(for synchronous tests and the browser), plus users and logging in."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from typing import Any

import httpx

from scheduler import web
from scheduler.models import User
from scheduler.storage import accounts
from scheduler.storage.db import Database

PASSWORD = "kunci-WEBAPP-7731-aman"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_user(db: Database, name: str, role: str, password: str | None = PASSWORD, language: str = "id") -> None:
    with db.session() as session:
        session.add(User(name=name, role=role, language=language))
        session.flush()
        if password is not None:
            accounts.set_password(session, name, password)


class Served:
    """``web.start`` on its own event loop in a thread; ``url`` is where it answers."""

    def __init__(self, settings: Any, db: Database, host: str = "127.0.0.1"):
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(settings, db, host), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the web app did not start"
        if self._error is not None:
            raise self._error

    def _run(self, settings: Any, db: Database, host: str) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            handle = self._loop.run_until_complete(web.start(settings, db, host, self.port))
        except BaseException as exc:  # handed to the test thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(handle.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._error is None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def log_in(client: httpx.Client, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in (its cookie jar keeps the session); the session's CSRF token."""
    answer = client.post("/login", data={"name": name, "password": password, "next": "/"})
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    return csrf_of(client.get("/").text)


def bearer(db: Database, name: str = "laporan", role: str = "viewer") -> dict[str, str]:
    """An API token's header, for a new user ``name``."""
    add_user(db, name, role)
    with db.session() as session:
        return {"Authorization": f"Bearer {accounts.create_token(session, name, 'test')[1]}"}


async def alog_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> None:
    answer = await client.post("/login", data={"name": name, "password": password, "next": "/"})
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
