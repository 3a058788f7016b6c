"""`promo users …` and `promo web`, run as people run them (subprocesses; a pseudo-terminal for the
password prompt): exit codes, passwords never echoed, printed or stored in plain text, an API token
printed once that works against the API of a real `promo web` on 127.0.0.1 until revoked."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select as sql_select

from scheduler.config import load_settings
from scheduler.models import ApiToken, AuditEntry, User
from scheduler.storage.db import Database
from tests.helpers import wait_for
from tests.webapp import free_port

PASSWORD = "kunci-ADMIN-2027-aman"
Promo = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def env(promo_env: Any, tmp_path: Path) -> dict[str, str]:
    e = {**promo_env(), "PATH": os.environ.get("PATH", "/usr/bin")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=e, cwd=tmp_path, check=True,
                   capture_output=True)
    return e


@pytest.fixture
def promo(env: dict[str, str], tmp_path: Path) -> Promo:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=env, cwd=tmp_path, input=stdin,
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL if stdin is None else None)

    return run


def users(env: dict[str, str]) -> dict[str, User]:
    db = Database(load_settings(env).database_url)
    try:
        with db.read_session() as s:
            found = {u.name: u for u in s.scalars(sql_select(User))}
            for u in found.values():
                s.expunge(u)
            return found
    finally:
        db.dispose()


def test_a_user_gets_a_password_from_stdin_kept_only_as_a_hash(promo: Promo, env: dict[str, str]) -> None:
    added = promo("--as", "kepala", "users", "add", "ana", "--role", "admin", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user ana: admin"
    stored = users(env)["ana"]
    assert stored.password_hash and stored.password_hash.startswith("$argon2") and PASSWORD not in stored.password_hash
    for fmt in ("table", "csv", "json"):
        listed = promo("users", "list", "--format", fmt)
        assert listed.returncode == 0 and "ana" in listed.stdout
        assert "argon2" not in listed.stdout and PASSWORD not in listed.stdout + listed.stderr
    [row] = json.loads(promo("users", "list", "--format", "json").stdout)
    assert (row["name"], row["role"], row["password"], row["disabled"]) == ("ana", "admin", True, False)
    # An existing user's role changes without asking for a password again; theirs stays.
    assert promo("users", "add", "ana", "--role", "editor").returncode == 0
    assert users(env)["ana"].password_hash == stored.password_hash and users(env)["ana"].role == "editor"


def test_without_a_terminal_or_stdin_a_new_user_is_refused_naming_the_ways(promo: Promo, env: dict[str, str]) -> None:
    refused = promo("users", "add", "rina", "--role", "viewer")
    assert refused.returncode == 2 and "--password-stdin" in refused.stderr and "--no-password" in refused.stderr
    assert "rina" not in users(env)
    short = promo("users", "add", "rina", "--role", "viewer", "--password-stdin", stdin="pendek\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr and "pendek" not in short.stderr
    assert "rina" not in users(env)  # nothing half-written: no user without the password asked for
    empty = promo("users", "add", "rina", "--role", "viewer", "--password-stdin", stdin="")
    assert empty.returncode == 2 and "no password" in empty.stderr
    both = promo("users", "add", "rina", "--role", "viewer", "--password-stdin", "--no-password", stdin="x\n")
    assert both.returncode == 2
    plain = promo("users", "add", "rina", "--role", "viewer", "--no-password")
    assert plain.returncode == 0 and "promo users passwd rina" in plain.stdout
    assert users(env)["rina"].password_hash is None
    bad_role = promo("users", "add", "budi", "--role", "boss", "--no-password")
    assert bad_role.returncode == 2 and "admin" in bad_role.stderr


def test_passwd_disable_enable_and_unknown_users(promo: Promo, env: dict[str, str]) -> None:
    assert promo("users", "add", "rina", "--role", "editor", "--no-password").returncode == 0
    done = promo("users", "passwd", "rina", "--password-stdin", stdin="sandi-rina-baru-1\r\n")
    assert done.returncode == 0 and "sandi" not in done.stdout + done.stderr
    first = users(env)["rina"].password_hash
    assert first and first.startswith("$argon2")
    off = promo("users", "disable", "rina")
    assert off.returncode == 0 and "disabled" in off.stdout and users(env)["rina"].disabled
    assert promo("users", "enable", "rina").returncode == 0 and not users(env)["rina"].disabled
    for args in (("users", "disable", "nobody"), ("users", "passwd", "nobody", "--password-stdin"),
                 ("users", "token", "nobody"), ("users", "tokens", "nobody")):
        missing = promo(*args, stdin="sandi-panjang-sekali\n")
        assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr, args
    assert promo("users", "passwd").returncode == 2
    db = Database(load_settings(env).database_url)
    with db.read_session() as s:
        actions = [a.action for a in s.scalars(sql_select(AuditEntry).where(AuditEntry.entity_id == "rina"))]
    db.dispose()
    assert actions == ["user_set", "password_set", "disabled", "enabled"]


def test_the_password_prompt_asks_twice_and_never_echoes(env: dict[str, str], tmp_path: Path) -> None:
    def on_a_terminal(*args: str, answers: list[str]) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: promo on the pseudo-terminal
            os.chdir(tmp_path)
            os.execve(sys.executable, [sys.executable, "-m", "scheduler.cli", *args], env)
        seen = b""
        pending = list(answers)
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"promo waits for nothing we know: {seen!r}"
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.endswith(b": "):  # a prompt waits (after an answer: "\r\n")
                os.write(fd, (pending.pop(0) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")

    code, shown = on_a_terminal("users", "add", "ana", "--role", "admin", answers=[PASSWORD, "salah-ketik-123"])
    assert code == 2 and "differ" in shown and "ana" not in users(env)
    code, shown = on_a_terminal("users", "add", "ana", "--role", "admin", answers=[PASSWORD, PASSWORD])
    assert code == 0, shown
    assert shown.count("password") >= 2 and PASSWORD not in shown  # asked twice, never echoed
    assert users(env)["ana"].password_hash


def test_an_api_token_is_printed_once_and_works_against_promo_web(promo: Promo, env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    assert promo("users", "add", "laporan", "--role", "viewer", "--no-password").returncode == 0
    made = promo("users", "token", "laporan", "--label", "dasbor kantor")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("promo_") and len(token) > 40 and "shown this once" in made.stderr
    assert token not in made.stderr  # on stdout alone, so `token=$(promo users token …)` keeps it
    listed = promo("users", "tokens", "laporan", "--format", "json")
    [row] = json.loads(listed.stdout)
    assert (row["user"], row["label"], row["revoked"]) == ("laporan", "dasbor kantor", False)
    assert token not in listed.stdout and token not in promo("users", "tokens").stdout
    db = Database(load_settings(env).database_url)
    with db.read_session() as s:
        assert token not in str([t.token_hash for t in s.scalars(sql_select(ApiToken))])
    db.dispose()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "web", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def me(value: str) -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {value}"},
                                 timeout=5, trust_env=False)
            except httpx.TransportError:
                return None

        answer = wait_for(lambda: me(token), 30, "promo web")
        assert answer.status_code == 200 and answer.json()["name"] == "laporan"
        assert promo("users", "token", "rina", "--revoke", str(row["id"])).returncode == 1  # not rina's token
        assert promo("users", "token", "laporan", "--revoke", "999").returncode == 1
        revoked = promo("users", "token", "laporan", "--revoke", str(row["id"]))
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        answer = me(token)
        assert answer is not None and answer.status_code == 401
        assert promo("users", "token", "laporan", "--revoke", str(row["id"]), "--label", "x").returncode == 2
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert f"web app: http://127.0.0.1:{port}/" in output and token not in output and "Traceback" not in output


def test_promo_web_off_this_machine_needs_an_admin_and_says_so(promo: Promo) -> None:
    refused = promo("web", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 1 and "no admin user has a password" in refused.stderr
    assert "Traceback" not in refused.stderr
    helps = promo("serve", "--help").stdout + promo("web", "--help").stdout
    assert "PROMO_WEB_PASSWORD" not in helps and "promo users add NAME --role admin" in helps
