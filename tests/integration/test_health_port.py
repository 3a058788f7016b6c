"""Several `promo serve` processes on one machine (README: any number may share a database):
the default health port falls back to a free one, named in the log; a port somebody set that
is taken stops start-up with a message naming the setting, never a traceback."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scheduler.config import load_settings
from scheduler.service import Service
from scheduler.storage.db import Database
from tests.helpers import wait_for

HEALTH_URL = re.compile(r"health: http://127\.0\.0\.1:(\d+)/healthz")


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def env_for(promo_env, **settings: str) -> dict[str, str]:
    return {**promo_env(POLL_SECONDS="0.2", **settings), "PATH": os.environ.get("PATH", "/usr/bin")}


async def test_the_default_port_taken_falls_back_to_a_free_one(promo_env, held_port: int, wait_until) -> None:
    # As when PROMO_HEALTH_PORT is unset and another process holds the default port.
    settings = dataclasses.replace(load_settings(promo_env()), health_port=held_port, health_port_explicit=False)
    assert not load_settings(promo_env()).health_port_explicit
    db = Database(settings.database_url)
    db.upgrade()
    service = Service(settings, db)
    runner = asyncio.create_task(service.run())
    try:
        await wait_until(lambda: service.health_address is not None or runner.done(), 15)
        assert service.health_address is not None, runner.exception()
        host, port = service.health_address
        assert port != held_port
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(f"http://{host}:{port}/healthz")
        assert answer.status_code in (200, 503) and answer.json()["worker"] == service.dispatcher.worker
    finally:
        service.request_stop()
        await asyncio.wait_for(runner, 30)


@pytest.mark.parametrize("how", ["PROMO_HEALTH_PORT", "--health-port"])
def test_a_chosen_port_that_is_taken_is_a_clear_error(promo_env, tmp_path: Path, held_port: int, how: str) -> None:
    env = env_for(promo_env)
    args = [sys.executable, "-m", "scheduler.cli", "serve"]
    if how == "PROMO_HEALTH_PORT":
        env["PROMO_HEALTH_PORT"] = str(held_port)
    else:
        args += ["--health-port", str(held_port)]
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"health port {held_port} ({how}) is already in use" in done.stderr
    assert "PROMO_HEALTH_PORT or --health-port" in done.stderr


def test_two_real_services_on_one_machine_both_answer(promo_env, tmp_path: Path) -> None:
    """Two `promo serve` with PROMO_HEALTH_PORT unset: the second one (at least) falls back."""
    env = env_for(promo_env)
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def port_of(proc: subprocess.Popen[bytes], log: Path) -> int | None:
        assert proc.poll() is None, log.read_text()
        m = HEALTH_URL.search(log.read_text())
        return int(m.group(1)) if m else None

    try:
        ports = []
        for n in range(2):  # one after the other: the second finds the first one's port taken
            log = tmp_path / f"serve{n}.log"
            with log.open("wb") as err:
                proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve"], env=env, cwd=tmp_path,
                                        stdout=subprocess.DEVNULL, stderr=err)
            procs.append((proc, log))
            ports.append(wait_for(lambda proc=proc, log=log: port_of(proc, log), 30, "the health address in the log"))
        assert len(set(ports)) == 2
        assert "is in use (another promo serve?)" in procs[1][1].read_text()
        for port in ports:
            answer = wait_for(lambda port=port: _healthz(port), 30, "/healthz 200")
            assert answer.status_code == 200
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log in procs:
            assert proc.wait(30) == 0, log.read_text()
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _healthz(port: int) -> httpx.Response | None:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.TransportError:
        return None
    return r if r.status_code == 200 else None
