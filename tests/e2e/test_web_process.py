"""`promo serve --web` runs the web app beside the service in its own process: pages answer while
the service's process cannot run at all (stopped with SIGSTOP), a killed web app is started
again, and it never outlives the service, even one killed with SIGKILL.

The real `promo serve --web` in a subprocess on 127.0.0.1; its web app is the one child it has.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import wait_for
from tests.webapp import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    env: dict[str, str]
    cwd: Path
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if alive(int(p))]

    def login_page(self, timeout: float = 10) -> int | None:
        try:
            return httpx.get(self.url + "/login", timeout=timeout, trust_env=False).status_code
        except httpx.TransportError:
            return None

    def status(self) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "scheduler.cli", "status", "--format", "json"], cwd=self.cwd,
                             env=self.env, capture_output=True, text=True, timeout=60).stdout
        return json.loads(out) if out.strip().startswith("{") else {}


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return False
    return "zombie" not in state.lower()


@pytest.fixture
def served(tmp_path: Path, promo_env: Any) -> Iterator[Served]:
    env = {**promo_env(HEALTH_PORT="0", LOG_LEVEL="INFO"), "PATH": os.environ.get("PATH", ""),
           "PYTHONPATH": str(ROOT), "PROMO_ENV_FILE": str(tmp_path / "none.env")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--web", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s = Served(proc, f"http://127.0.0.1:{port}", env, tmp_path)
    out = proc.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: s.lines.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: s.login_page() == 200, 60, "the web app's login page")
        yield s
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a test may have stopped it
            proc.terminate()
            proc.wait(60)
        reader.join(10)
        out.close()


@pytest.mark.slow
def test_pages_answer_while_the_service_process_is_stopped(served: Served) -> None:
    [web] = wait_for(served.children, 30, "the web app's process")
    assert web != served.proc.pid
    assert wait_for(lambda: len(served.status().get("workers", [])) == 1, 60, "the service ticking") is True
    os.kill(served.proc.pid, signal.SIGSTOP)  # the service's process can run nothing at all now
    try:
        assert served.login_page(timeout=60) == 200, "the web app is not on the service's loop"
    finally:
        os.kill(served.proc.pid, signal.SIGCONT)
    # It does no publishing: the one dispatcher `promo status` sees is the service's.
    assert [w["worker"].split(":")[1] for w in served.status()["workers"]] == [str(served.proc.pid)]
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(60) == 0, served.output
    wait_for(lambda: not alive(web), 30, "the web app to stop with the service")
    assert "stopped" in served.output and f"web app: {served.url}/" in served.output


@pytest.mark.slow
def test_a_killed_web_app_is_started_again(served: Served) -> None:
    [first] = wait_for(served.children, 30, "the web app's process")
    os.kill(first, signal.SIGKILL)
    [second] = wait_for(lambda: [p for p in served.children() if p != first], 60, "another web app process")
    assert wait_for(lambda: served.login_page() == 200, 60, "the pages again")
    assert f"web app pid {first} exited with signal 9 (SIGKILL)" in served.output
    assert served.proc.poll() is None, "the service runs on"
    served.proc.terminate()
    assert served.proc.wait(60) == 0, served.output
    wait_for(lambda: not alive(second), 30, "the web app to stop with the service")


@pytest.mark.slow
def test_a_service_killed_with_sigkill_takes_its_web_app_along(served: Served) -> None:
    [web] = wait_for(served.children, 30, "the web app's process")
    served.proc.kill()
    served.proc.wait(30)
    wait_for(lambda: not alive(web), 30, "the web app to exit after the service was killed")
    assert served.login_page() is None, "nothing answers on the port any more"
