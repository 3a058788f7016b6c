"""The one post factory of the adapter tests (procrastinate's ``job_factory`` habit).

``post_factory(**fields)`` builds the :class:`ReadyPost` an adapter is given. A module sets
its own defaults (its text, its clock) in ``POST_DEFAULTS``; a default that is callable is
called per post (a fresh idempotency key, a time relative to now). Helpers that run outside
a test's arguments use :func:`make_post` with the same defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from scheduler.platforms.base import ReadyPost

KEY = "0c8e4a2e6bb54d0f9a4b1f0f2f5a7d11"
BASE: dict[str, Any] = {"post_id": 7, "idempotency_key": KEY,
                        "text": "Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"}


def make_post(defaults: Mapping[str, Any] | None = None, **fields: Any) -> ReadyPost:
    """A ReadyPost: ``fields`` over the module's ``defaults`` over :data:`BASE`."""
    values = {**BASE, **(defaults or {}), **fields}
    return ReadyPost(**{k: v() if callable(v) else v for k, v in values.items()})


@pytest.fixture
def post_factory(request: pytest.FixtureRequest) -> Callable[..., ReadyPost]:
    defaults = getattr(request.module, "POST_DEFAULTS", {})

    def factory(**fields: Any) -> ReadyPost:
        return make_post(defaults, **fields)

    return factory
