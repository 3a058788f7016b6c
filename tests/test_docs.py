"""Every setting is in config.example.env and every promo subcommand has help (datasette-style)."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from scheduler.cli import build_parser
from scheduler.config import DEFAULT_MAX_LATENESS
from scheduler.platforms import PLATFORMS, adapter_class

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.env"


def documented() -> str:
    assert EXAMPLE.is_file(), "config.example.env is missing at the repository root"
    return EXAMPLE.read_text(encoding="utf-8")


def config_keys() -> set[str]:
    """Every PROMO_* key config.py reads: literal keys, get("KEY") calls and MAX_LATENESS_<KIND>."""
    tree = ast.parse((REPO / "scheduler" / "config.py").read_text(encoding="utf-8"))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            keys.update(re.findall(r"\bPROMO_[A-Z][A-Z0-9_]*[A-Z0-9]\b", node.value))
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.args[0].value)
                and getattr(node.func, "id", None) in ("get", "as_bool", "as_number", "as_duration", "as_clock",
                                                       "as_list")):
            keys.add("PROMO_" + node.args[0].value)
        if (isinstance(node, ast.BinOp) and getattr(node.left, "id", None) == "PREFIX"
                and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)):
            keys.add("PROMO_" + node.right.value)  # env.get(PREFIX + "SECRET_KEY")
    keys.update(f"PROMO_MAX_LATENESS_{kind.upper()}" for kind in DEFAULT_MAX_LATENESS)
    # prefixes and patterns, not keys
    keys -= {"PROMO_CHANNEL", "PROMO_MAX_LATENESS"}
    return {k for k in keys if not k.endswith("_")}


def test_config_keys_were_found() -> None:
    keys = config_keys()
    assert {"PROMO_DATABASE_URL", "PROMO_TIMEZONE", "PROMO_CHANNELS", "PROMO_REQUIRE_APPROVAL",
            "PROMO_SECRET_KEY", "PROMO_MAX_LATENESS_ALERT"} <= keys


@pytest.mark.parametrize("key", sorted(config_keys()))
def test_every_setting_is_in_config_example_env(key: str) -> None:
    assert re.search(rf"^\s*#?\s*{key}=", documented(), re.M), f"{key} is not documented in config.example.env"


def test_channel_keys_are_documented() -> None:
    text = documented()
    for suffix in ("PLATFORM", "SLOTS", "TIMEZONE", "SLOTS_SAT"):
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
