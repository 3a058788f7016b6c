"""A module that fails to import is a bug: the service and the registry say so instead of
quietly running without the highlight or event jobs, or calling a platform "not available"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scheduler import platforms
from scheduler.config import load_settings
from scheduler.service import Service
from scheduler.storage.db import Database


def test_a_job_module_that_cannot_be_imported_stops_the_service(tmp_path: Path, monkeypatch) -> None:
    settings = load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db"})
    service = Service(settings, Database(settings.database_url))
    monkeypatch.setitem(sys.modules, "jobs.daily_highlight", None)  # import raises ImportError
    with pytest.raises(ImportError):
        service.add_jobs()


def test_a_platform_module_that_cannot_be_imported_is_not_called_unavailable(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "scheduler.platforms.mastodon", None)
    with pytest.raises(ImportError):
        platforms.adapter_class("mastodon")
