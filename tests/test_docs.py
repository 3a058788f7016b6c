"""Every setting is in config.example.env and every promo subcommand has help (datasette-style)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.cli import build_parser
from scheduler.config import CHANNEL_KEYS, DEFAULT_MAX_LATENESS, SETTINGS, Settings, example_env
from scheduler.platforms import PLATFORMS, adapter_class

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.env"


def documented() -> str:
    assert EXAMPLE.is_file(), "config.example.env is missing at the repository root"
    return EXAMPLE.read_text(encoding="utf-8")


def config_keys() -> set[str]:
    """Every PROMO_* key config.py reads: its declaration table."""
    return {s.name for s in SETTINGS}


def test_config_keys_were_found() -> None:
    keys = config_keys()
    assert {"PROMO_DATABASE_URL", "PROMO_TIMEZONE", "PROMO_CHANNELS", "PROMO_REQUIRE_APPROVAL",
            "PROMO_SECRET_KEY", "PROMO_MAX_LATENESS_ALERT"} <= keys
    assert {f"PROMO_MAX_LATENESS_{kind.upper()}" for kind in DEFAULT_MAX_LATENESS} <= keys


@pytest.mark.parametrize("key", sorted(config_keys()))
def test_every_setting_is_in_config_example_env(key: str) -> None:
    assert re.search(rf"^\s*#?\s*{key}=", documented(), re.M), f"{key} is not documented in config.example.env"


def test_config_example_env_is_generated_from_the_declarations() -> None:
    """Regenerating config.example.env gives the committed text (edit SETTINGS or an adapter's
    key_docs, then run `python -m scheduler.config example > config.example.env`)."""
    assert example_env() == documented(), ("config.example.env is stale: run "
                                           "`python -m scheduler.config example > config.example.env`")


def test_the_generator_runs_as_a_module() -> None:
    out = subprocess.run([sys.executable, "-m", "scheduler.config", "example"], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout == documented()


def test_every_settings_field_is_filled_by_a_declared_setting() -> None:
    """A new setting is declared in SETTINGS (with help), not read by hand in load_settings."""
    declared = {s.field.partition(".")[0] for s in SETTINGS if s.field}
    derived = {"channels", "health_port_explicit"}
    assert {f.name for f in dataclasses.fields(Settings)} - derived == declared
    # Every setting has help: its own, or the comment over the group it follows (RETRY_BASE/MAX_SECONDS).
    for before, s in zip(SETTINGS, SETTINGS[1:], strict=False):
        assert SETTINGS[0].help and (s.help or before.section == s.section), f"{s.name} has no help text"
    assert len({s.key for s in SETTINGS}) == len(SETTINGS), "a key is declared twice"


def test_adapter_key_docs_are_declared_keys() -> None:
    for platform in PLATFORMS:
        cls = adapter_class(platform)
        assert cls.doc_title and cls.doc_channel, platform
        assert set(cls.key_docs) <= set(cls.all_keys()) | set(CHANNEL_KEYS), platform


def test_channel_keys_are_documented() -> None:
    text = documented()
    for suffix in ("PLATFORM", "SLOTS", "TIMEZONE", "SLOTS_SAT", "BUDGET"):
        assert re.search(rf"PROMO_CHANNEL_\w+_{suffix}=", text), f"PROMO_CHANNEL_<NAME>_{suffix}"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_adapter_key_is_documented(platform: str) -> None:
    text = documented()
    missing = [key for key in adapter_class(platform).all_keys()
               if not re.search(rf"PROMO_CHANNEL_\w+_{key}=", text)]
    assert not missing, f"platform {platform}: {missing} not in config.example.env"


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), helps.get(name), sub
                yield from subcommands(sub, (*path, name))


def test_every_subcommand_and_option_has_help() -> None:
    found = list(subcommands(build_parser()))
    assert len(found) > 20
    no_help = [" ".join(path) for path, help_text, _ in found if not help_text]
    assert not no_help, f"subcommands without help: {no_help}"
    bare = [f"{' '.join(path)} {a.option_strings[0]}" for path, _, sub in found for a in sub._actions
            if a.option_strings and a.help is None]
    assert not bare, f"options without help: {bare}"
