"""The README's examples work as printed (the datasette habit: the docs are tested).

Every fenced block of README.md is read in order; each line that is a `promo` command is run,
as `python -m scheduler.cli`, in a fresh folder holding a copy of `examples/`, after what
`make run` leaves behind (`promo db upgrade`, `promo demo`, and `promo serve` until the demo
posts are published). A command is expected to exit 0, or N when its comment says `exit N`,
and (but for `highlight history`, empty until a highlight ran) to show something.

Not run, on purpose (each line says why when the test runs with -v):
  * lines that are not `promo` commands: `make run`, `make test`, the benchmarks, pytest;
  * `promo serve …`, `promo web …`: run until Ctrl-C;
  * `promo users add|passwd` without --no-password/--password-stdin: asks for a password on a terminal;
  * lines with a placeholder to fill in: `ID`, `…`, `[optional]` arguments;
  * `masto_kota`: needs a real Mastodon account.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^\s*```[^\n]*\n(.*?)^\s*```", re.M | re.S)
EXPECTED_EXIT = re.compile(r"#.*\bexit (\d+)")


def readme_commands(text: str) -> list[tuple[str, list[str] | None, str]]:
    """(line, argv or None, why not run) for every non-empty line of every fenced block, in order."""
    out: list[tuple[str, list[str] | None, str]] = []
    for block in FENCE.findall(text):
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                argv = shlex.split(line, comments=True)
            except ValueError:  # not shell (a diagram)
                out.append((line, None, "not a shell command"))
                continue
            out.append((line, argv, skip_reason(line, argv)))
    return out


def skip_reason(line: str, argv: list[str]) -> str:
    if not argv or argv[0] != "promo":
        return "not a promo command (make, benchmarks, pytest)"
    if "serve" in argv or argv[1:2] == ["web"]:
        return "runs until Ctrl-C"
    if argv[1:3] in (["users", "add"], ["users", "passwd"]) and not {"--no-password", "--password-stdin"} & set(argv):
        return "asks for a password on a terminal"
    if "ID" in argv or "…" in line.split("#")[0] or any(a.startswith("[") for a in argv):
        return "a placeholder to fill in"
    if "masto_kota" in argv:
        return "needs a real Mastodon account"
    return ""


def make_run(promo: Callable[[list[str]], subprocess.CompletedProcess[str]], env: dict[str, str],
             folder: Path) -> None:
    """What `make run` leaves behind: the database, the demo, and its posts published by `promo serve`
    (brought forward from "a minute or two ahead" so the test does not wait for them)."""
    for setup in (["promo", "db", "upgrade"], ["promo", "demo"]):
        done = promo(setup)
        assert done.returncode == 0, done.stderr
        ids = re.findall(r"^queued post (\d+)", done.stdout, re.M)
    assert ids
    for post_id in ids:
        assert promo(["promo", "post", "reschedule", post_id, "--now"]).returncode == 0
    with subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve"], cwd=folder, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as serve:
        try:
            wait_for(lambda: json.loads(promo(["promo", "status", "--format", "json"]).stdout)["counts"]
                     == {"published": len(ids)}, 60, "the demo posts to be published")
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)


def test_the_parser_finds_the_examples() -> None:
    commands = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    run = [line for line, _, why in commands if not why]
    assert len(run) >= 20, run
    assert any("post reschedule" in line for line in run) and any("history" in line for line in run)
    skipped = {line: why for line, _, why in commands if why}
    assert skipped["make run"].startswith("not a promo command")
    assert skipped["promo serve                 # the service; GET http://127.0.0.1:8765/healthz"] == "runs until Ctrl-C"


def test_every_readme_command_works_as_printed(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PROMO_ENV_FILE": str(tmp_path / "no.env"), "PROMO_HEALTH_PORT": "0", "PROMO_POLL_SECONDS": "0.2"}

    def promo(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    make_run(promo, env, tmp_path)
    ran = 0
    for line, argv, why in readme_commands((REPO / "README.md").read_text(encoding="utf-8")):
        if why or argv is None:
            continue
        # Run as printed, a command must stay in the reader's folder (this test once wrote to /srv).
        assert not [a for a in argv[1:] if a.startswith("/")], f"README: `{line}` names an absolute path"
        m = EXPECTED_EXIT.search(line)
        expected = int(m.group(1)) if m else 0
        done = promo(argv)
        assert done.returncode == expected, (f"README: `{line}` exited {done.returncode}, not {expected}\n"
                                             f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")
        assert "Traceback" not in done.stderr, line
        if expected == 0 and argv[1:3] != ["highlight", "history"]:  # (no highlight has run after `make run`)
            # It shows something: not just a header, not "(none)".
            lines = done.stdout.strip().splitlines()
            assert lines and lines[-1] != "(none)" and lines[-1] != "[]", f"README: `{line}` shows nothing"
            assert "--format csv" not in line or len(lines) > 1, f"README: `{line}` prints only a header"
        ran += 1
    assert ran >= 20
