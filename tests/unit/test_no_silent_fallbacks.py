"""A module that fails to import is a bug: the service and the registry say so instead of
quietly running without the highlight or event jobs, or calling a platform "not available"."""

from __future__ import annotations

import importlib
import sys

import pytest

import scheduler.service  # noqa: F401  (imported once, so the test can take it away)
from scheduler import platforms


def test_a_job_module_that_cannot_be_imported_stops_the_service(monkeypatch) -> None:
    # The service imports every job it declares up front: no job quietly missing at run time.
    monkeypatch.setitem(sys.modules, "jobs.highlight.create", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "scheduler.service")
    with pytest.raises(ImportError):
        importlib.import_module("scheduler.service")


def test_a_platform_module_that_cannot_be_imported_is_not_called_unavailable(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "scheduler.platforms.mastodon", None)
    with pytest.raises(ImportError):
        platforms.adapter_class("mastodon")
