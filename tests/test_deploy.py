"""deploy/: every `promo …` command the systemd units run exists in the CLI with those options,
and each service unit stops with SIGINT, restarts on failure and reads its environment file."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from scheduler.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
UNITS = sorted((REPO / "deploy").glob("*.service"))


def unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path)
    return cp


def promo_commands(path: Path) -> list[list[str]]:
    cp = unit(path)
    out = []
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
        line = cp.get("Service", key, fallback="")
        if not line:
            continue
        argv = shlex.split(line.lstrip("-+!@"))
        if Path(argv[0]).name == "promo":
            out.append(argv[1:])
    return out


def test_the_units_exist() -> None:
    assert {p.name for p in UNITS} >= {"promo.service", "promo-web.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_every_promo_command_a_unit_runs_parses(path: Path) -> None:
    parser = build_parser()
    for argv in promo_commands(path):
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{path.name}: `promo {' '.join(argv)}` is not a command the CLI accepts")
        assert callable(args.func)


@pytest.mark.parametrize("name", ["promo.service", "promo-web.service"])
def test_service_units_stop_gently_restart_and_read_their_environment(name: str) -> None:
    service = unit(REPO / "deploy" / name)["Service"]
    assert service["KillSignal"] == "SIGINT"
    assert service["Restart"] in ("on-failure", "always")
    assert service["EnvironmentFile"].startswith("/etc/promo/")
    assert promo_commands(REPO / "deploy" / name)[0][0] == "serve"


def test_a_unit_with_a_command_the_cli_lacks_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStart=/opt/promo/.venv/bin/promo serve --no-such-flag\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        build_parser().parse_args(promo_commands(bad)[0])
