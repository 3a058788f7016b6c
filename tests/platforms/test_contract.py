"""What every adapter must do: one suite parametrized over every platform module.

Each platform contributes a case module in ``tests/platforms/cases/`` with its options
and its documented answers; this suite drives the adapter through httpx.MockTransport.
"""

from __future__ import annotations

import importlib
import pkgutil

import httpx
import pytest

from scheduler import errors
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.base import Adapter, ChannelContext, MemoryState, PlatformRules, ReadyPost
from scheduler.textrules import TextRule
from tests.platforms import cases as cases_pkg

CASES = {
    mod.PLATFORM: mod
    for mod in (
        importlib.import_module(f"tests.platforms.cases.{m.name}") for m in pkgutil.iter_modules(cases_pkg.__path__)
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


def make(case, tmp_path, handler=None) -> Adapter:
    cls = adapter_class(case.PLATFORM)
    state = MemoryState(case.state() if hasattr(case, "state") else None)
    ctx = ChannelContext(name=f"test_{case.PLATFORM}", options=case.options(tmp_path), state=state,
                         public_media_base_url="http://127.0.0.1:9/media")

    def default(request: httpx.Request) -> httpx.Response:  # pragma: no cover - fails the test
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler or default))
    return cls(ctx, client)


def post(**kw) -> ReadyPost:
    base = dict(post_id=7, idempotency_key="0c8e4a2e6bb54d0f9a4b1f0f2f5a7d11",
                text="Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan",
                link="https://umkm.example/kue", title="Kue Lapis", description="Kue lapis legit")
    base.update(kw)
    return ReadyPost(**base)


def test_declares_rules_as_data(case):
    cls = adapter_class(case.PLATFORM)
    assert cls.platform == case.PLATFORM
    assert isinstance(cls.rules, PlatformRules)
    assert cls.rules.text and all(isinstance(r, TextRule) and r.limit > 0 for r in cls.rules.text)
    assert cls.rules.max_image_bytes > 0 and cls.rules.image_types
    assert cls.help, "help says where to find the keys"
    for key in cls.secret_keys:
        assert key in cls.all_keys()


def test_complete_options_validate_and_empty_ones_name_the_missing_keys(case, tmp_path):
    cls = adapter_class(case.PLATFORM)
    assert cls.validate_options(case.options(tmp_path)) == []
    if any(cls.required_keys):
        problems = cls.validate_options({})
        assert problems
        first_group = next(g for g in cls.required_keys if g)
        assert any(first_group[0] in p for p in problems)


async def test_publishes_a_text_post_with_a_link(case, tmp_path):
    if case.success is None and case.PLATFORM != "outbox":
        pytest.skip("no HTTP")
    sent: list[httpx.Request] = []

    def handler(request):
        sent.append(request)
        return case.success(request)

    adapter = make(case, tmp_path, handler if case.success else None)
    if adapter.rules_for(adapter.ctx.options).requires_image:
        pytest.skip(f"{case.PLATFORM} cannot publish without an image")
    result = await adapter.publish(post())
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


async def test_connection_refused_is_transient_and_timeout_is_unknown(case, tmp_path):
    if case.success is None:
        pytest.skip("no HTTP")

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    adapter = make(case, tmp_path, refuse)
    with pytest.raises(errors.Transient) as info:
        await _publish_or_check(adapter)
    assert "SECRET" not in str(info.value)

    def timeout(request):
        # the first call that publishes times out after sending
        raise httpx.ReadTimeout("timed out", request=request)

    adapter = make(case, tmp_path, timeout)
    with pytest.raises((errors.UnknownOutcome, errors.Transient)) as info:
        await _publish_or_check(adapter)
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
        return await adapter.publish(post(image=Media.from_path(img, public_url="http://127.0.0.1:9/media/p.jpg")))
    return await adapter.publish(post())
