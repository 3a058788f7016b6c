"""What every adapter must do: one suite parametrized over every platform module.

Each platform contributes a case module in ``tests/platforms/cases/`` with its options
and its documented answers; this suite drives the adapter through httpx.MockTransport.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil

import httpx
import pytest

from scheduler import errors
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.base import (
    Adapter,
    ChannelContext,
    MemoryState,
    PlatformRules,
    SendBudget,
    is_secret_key,
)
from scheduler.textrules import TextRule
from tests.platforms import cases as cases_pkg
from tests.platforms.conftest import make_post

CASES = {
    mod.PLATFORM: mod
    for mod in (
        importlib.import_module(f"tests.platforms.cases.{m.name}") for m in pkgutil.iter_modules(cases_pkg.__path__)
        if not m.name.startswith("_")  # shared helpers, not a platform
    )
}


def test_every_registered_platform_has_a_case():
    present = [p for p in PLATFORMS if _module_present(p)]
    assert sorted(present) == sorted(CASES), "each adapter module needs a tests/platforms/cases/<name>.py"


def _module_present(platform: str) -> bool:
    try:
        adapter_class(platform)
    except errors.ConfigError:
        return False
    return True


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def make(case, tmp_path, handler=None, state=None) -> Adapter:
    cls = adapter_class(case.PLATFORM)
    state = MemoryState({**(case.state() if hasattr(case, "state") else {}), **(state or {})})
    ctx = ChannelContext(name=f"test_{case.PLATFORM}", options=case.options(tmp_path), state=state,
                         public_media_base_url="http://127.0.0.1:9/media")

    def default(request: httpx.Request) -> httpx.Response:  # pragma: no cover - fails the test
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler or default))
    return cls(ctx, client)


POST_DEFAULTS = {"link": "https://umkm.example/kue", "title": "Kue Lapis", "description": "Kue lapis legit"}


def test_declares_rules_as_data(case):
    cls = adapter_class(case.PLATFORM)
    assert cls.platform == case.PLATFORM
    assert isinstance(cls.rules, PlatformRules)
    assert cls.rules.text and all(isinstance(r, TextRule) and r.limit > 0 for r in cls.rules.text)
    assert cls.rules.max_image_bytes > 0 and cls.rules.image_types
    assert cls.help, "help says where to find the keys"
    for key in cls.secret_keys:
        assert key in cls.all_keys()


def test_declares_its_send_budget_and_stored_token_keys(case, tmp_path):
    """Every adapter says, in its own class, how much one account may send and which tokens it
    keeps in the database (an empty tuple says: none), so nothing is inherited by accident."""
    cls = adapter_class(case.PLATFORM)
    assert "budget" in vars(cls), f"{cls.__name__} must declare budget (() when the platform has none)"
    assert "token_keys" in vars(cls) and isinstance(cls.token_keys, tuple), f"{cls.__name__} must declare token_keys"
    for b in cls.budget:
        assert isinstance(b, SendBudget) and b.limit > 0 and b.window > dt.timedelta(0) and b.source
    for key in cls.token_keys:
        assert is_secret_key(key), f"stored token key {key!r} would not be redacted"
    if cls.token_keys_if is not None:
        assert cls.token_keys_if in cls.all_keys()
    opts = case.options(tmp_path)
    assert cls.stores_tokens(opts) == bool(cls.token_keys and (cls.token_keys_if is None
                                                                or opts.get(cls.token_keys_if)))


def test_complete_options_validate_and_empty_ones_name_the_missing_keys(case, tmp_path):
    cls = adapter_class(case.PLATFORM)
    assert cls.validate_options(case.options(tmp_path)) == []
    if any(cls.required_keys):
        problems = cls.validate_options({})
        assert problems
        first_group = next(g for g in cls.required_keys if g)
        assert any(first_group[0] in p for p in problems)


async def test_publishes_a_text_post_with_a_link(post_factory, case, tmp_path):
    if case.success is None and case.PLATFORM != "outbox":
        pytest.skip("no HTTP")
    sent: list[httpx.Request] = []

    def handler(request):
        sent.append(request)
        return case.success(request)

    adapter = make(case, tmp_path, handler if case.success else None)
    if adapter.rules_for(adapter.ctx.options).requires_image:
        pytest.skip(f"{case.PLATFORM} cannot publish without an image")
    result = await adapter.publish(post_factory())
    assert result.remote_id
    for request in sent:
        assert request.url.host == "127.0.0.1", f"request left BASE_URL: {request.url}"


async def test_auth_failure_is_an_auth_error_without_secrets(case, tmp_path):
    if case.auth_failure is None:
        pytest.skip("no credentials")
    adapter = make(case, tmp_path, case.auth_failure)
    with pytest.raises(errors.AuthError) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)


async def test_server_error_is_transient_or_unknown(case, tmp_path):
    if case.server_error is None:
        pytest.skip("no HTTP")
    adapter = make(case, tmp_path, case.server_error)
    with pytest.raises((errors.Transient, errors.UnknownOutcome)) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)


def on_create(case, answer):
    """The case's success answers, except ``answer`` for the call that creates the post."""
    def handler(request: httpx.Request) -> httpx.Response:
        if case.is_create(request):
            return answer(request)
        return case.success(request)
    return handler


async def test_connection_refused_is_transient_and_a_timeout_after_sending_is_unknown(case, tmp_path):
    if case.success is None:
        pytest.skip("no HTTP")

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    adapter = make(case, tmp_path, refuse)
    with pytest.raises(errors.Transient) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)

    def timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    # Everything before goes through; the call that creates the post times out after sending:
    # it may have published, so never "nothing happened" (Transient would resend blindly).
    adapter = make(case, tmp_path, on_create(case, timeout))
    with pytest.raises(errors.UnknownOutcome) as unknown:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(unknown.value)


async def test_rate_limit_waits_until_the_time_the_platform_names(case, tmp_path):
    if case.rate_limited is None:
        pytest.skip("no HTTP")
    adapter = make(case, tmp_path, on_create(case, case.rate_limited))
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(errors.RateLimited) as info:
        await _publish_or_check(adapter)
    expected = case.rate_limit_expected(now) if hasattr(case, "rate_limit_expected") else \
        now + dt.timedelta(seconds=120)
    assert abs(info.value.retry_at - expected) <= dt.timedelta(seconds=5), (info.value.retry_at, expected)
    assert info.value.retry_at.tzinfo is not None and "SECRET" not in str(info.value)


async def test_invalid_content_is_rejected(case, tmp_path):
    if case.rejected is None:
        pytest.skip("no HTTP")
    adapter = make(case, tmp_path, on_create(case, case.rejected))
    with pytest.raises(errors.RejectedContent) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)


async def test_the_platforms_duplicate_answer_is_duplicate(case, tmp_path):
    if case.duplicate is None:
        pytest.skip(f"{case.PLATFORM} has no duplicate answer")
    adapter = make(case, tmp_path, on_create(case, case.duplicate))
    with pytest.raises(errors.Duplicate) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)


#: The first attempt that may have published started here; posts from before cannot be ours.
FIRST_ATTEMPT = dt.datetime(2026, 8, 22, 0, 55, tzinfo=dt.UTC)


async def test_reconcile_found_is_the_remote_post_absent_is_none_and_unsure_is_unknown(post_factory, case, tmp_path):
    options = case.options(tmp_path)
    rules = adapter_class(case.PLATFORM).rules_for(options, MemoryState())
    ready = post_factory(created_at=FIRST_ATTEMPT - dt.timedelta(days=2), attempted_at=FIRST_ATTEMPT)
    if not rules.can_reconcile:
        # The dispatcher never resends blindly there: an unknown outcome goes to needs_review.
        assert case.reconcile_found is None and not rules.idempotent
        with pytest.raises(errors.UnknownOutcome):
            await make(case, tmp_path).reconcile(ready)
        return
    if case.PLATFORM == "outbox":
        adapter = make(case, tmp_path)
        sent = await adapter.publish(ready)
        assert await adapter.reconcile(ready) == sent
        assert await adapter.reconcile(post_factory(idempotency_key="another-key", attempted_at=FIRST_ATTEMPT)) is None
        return
    state = case.reconcile_state(ready.idempotency_key) if hasattr(case, "reconcile_state") else None
    found = await make(case, tmp_path, case.reconcile_found(ready.text), state).reconcile(ready)
    assert found is not None and found.remote_id.startswith(case.FOUND_ID)
    assert await make(case, tmp_path, case.reconcile_absent(ready.text), state).reconcile(ready) is None
    with pytest.raises(errors.UnknownOutcome) as info:
        await make(case, tmp_path, case.reconcile_unknown(ready.text), state).reconcile(ready)
    assert "SECRET" not in str(info.value)


async def _publish_or_check(adapter: Adapter):
    rules = adapter.rules_for(adapter.ctx.options)
    if rules.requires_image:
        import pathlib
        import tempfile  # noqa: E401

        from scheduler.platforms.base import Media

        d = pathlib.Path(tempfile.mkdtemp())
        img = d / "p.jpg"
        img.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 100)
        return await adapter.publish(make_post(POST_DEFAULTS, image=Media.from_path(img, public_url="http://127.0.0.1:9/media/p.jpg")))
    return await adapter.publish(make_post(POST_DEFAULTS))
