"""The shared Graph error mapping (facebook, instagram, threads) and usage headers."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.graph_errors import ContainerGone, graph_error, regain_minutes, retry_at_from_usage
from tests.platforms.graphfake import graph_error as answer
from tests.platforms.graphfake import make_adapter

NOW = dt.datetime(2024, 10, 23, 2, 0, tzinfo=dt.UTC)
TOKEN = "EAAB-SECRET-graph-token"


@pytest.fixture
def adapter():
    a, _ = make_adapter("facebook", {"PAGE_ID": "1", "ACCESS_TOKEN": TOKEN}, lambda r: httpx.Response(200))
    return a


def buc(minutes: int) -> dict[str, str]:
    usage = {"104857600123": [{"type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 30,
                               "estimated_time_to_regain_access": minutes}]}
    return {"X-Business-Use-Case-Usage": json.dumps(usage)}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (answer(190, "Error validating access token: Session has expired", 463), errors.AuthError),
        (answer(190, "Invalid OAuth access token - Cannot parse access token"), errors.AuthError),
        (answer(102, "Session key invalid or no longer valid"), errors.AuthError),
        (answer(100, "The session has been invalidated", 33), errors.AuthError),
        (answer(10, "Application does not have permission for this action", status=403), errors.AuthError),
        (answer(200, "Requires pages_manage_posts permission", status=403), errors.AuthError),
        (answer(283, "Requires extended permission: pages_read_engagement"), errors.AuthError),
        (answer(200, "Publishing authorization required", 1404078), errors.AuthError),
        (answer(25, "The user is restricted", 2207050), errors.AuthError),
        (answer(1, "Unknown", 999, message_user="x", is_transient=False), errors.Transient),
        (answer(506, "Duplicate status message"), errors.Duplicate),
        (answer(100, "These photos were already posted", 1366051), errors.Duplicate),
        (answer(100, "Invalid parameter"), errors.RejectedContent),
        (answer(100, "Error posting link", 1609005), errors.RejectedContent),
        (answer(100, "Photos should be smaller than 4 MB", 1366046), errors.RejectedContent),
        (answer(368, "The action attempted has been deemed abusive", 1346003), errors.RejectedContent),
        (answer(36003, "The aspect ratio is not supported", 2207009), errors.RejectedContent),
        (answer(4, "Action blocked: spam protection", 2207051), errors.RejectedContent),
        (answer(100, "Too many links", error_user_msg="THREADS_API__LINK_LIMIT_EXCEEDED"), errors.RejectedContent),
        (answer(1, "An unknown error occurred"), errors.Transient),
        (answer(2, "Service temporarily unavailable", status=503), errors.Transient),
        (answer(100, "Temporarily unavailable", 1363047), errors.Transient),
        (answer(9999, "Something odd", is_transient=True), errors.Transient),
        (answer(-1, "Server error", 2207001, status=500), errors.Transient),
        (answer(-2, "Timeout downloading media", 2207003), errors.Transient),
        (answer(9007, "Media not ready for publishing", 2207027), errors.Transient),
        (answer(24, "The media container expired", 2207020), ContainerGone),
        (answer(2, "Gateway timeout", status=504), errors.UnknownOutcome),
        (httpx.Response(502, text="<html>Bad gateway</html>"), errors.Transient),
        (httpx.Response(504, text="gateway timeout"), errors.UnknownOutcome),
        (httpx.Response(401, text="nope"), errors.AuthError),
        (answer(12345, "Something else"), errors.RejectedContent),
    ],
)
def test_graph_error_mapping(adapter, response, expected):
    error = graph_error(adapter, response, "post")
    assert type(error) is expected
    assert "SECRET" not in str(error)


@pytest.mark.parametrize(("code", "subcode"), [(4, None), (17, None), (32, None), (613, None), (341, None),
                                               (80001, None), (80002, None), (32, 1390008)])
@time_machine.travel(NOW, tick=False)
def test_throttling_codes_wait_exactly_as_long_as_the_usage_header_says(adapter, code, subcode):
    error = graph_error(adapter, answer(code, "Application request limit reached", subcode, headers=buc(17)), "post")
    assert isinstance(error, errors.RateLimited)
    assert error.retry_at == NOW + dt.timedelta(minutes=17)
    assert error.retry_at.tzinfo is not None


@time_machine.travel(NOW, tick=False)
def test_throttling_without_a_usage_estimate_waits_the_default(adapter):
    app_usage = {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 20, "total_time": 25})}
    error = graph_error(adapter, answer(4, "Application request limit reached", headers=app_usage), "post")
    assert isinstance(error, errors.RateLimited)
    assert error.retry_at == NOW + dt.timedelta(minutes=15)


@time_machine.travel(NOW, tick=False)
def test_publishing_cap_and_policy_block_wait_an_hour_without_a_header(adapter):
    cap = graph_error(adapter, answer(9, "Application request limit reached", 2207042, status=403), "publish")
    block = graph_error(adapter, answer(368, "Temporarily blocked for policy violations"), "post")
    assert isinstance(cap, errors.RateLimited) and isinstance(block, errors.RateLimited)
    assert cap.retry_at == block.retry_at == NOW + dt.timedelta(hours=1)


@time_machine.travel(NOW, tick=False)
def test_usage_headers_take_the_largest_estimate_across_headers_and_objects():
    usage = {"1": [{"type": "pages", "estimated_time_to_regain_access": 3}],
             "2": [{"type": "instagram", "estimated_time_to_regain_access": 42}]}
    headers = httpx.Headers({"X-Business-Use-Case-Usage": json.dumps(usage),
                             "X-App-Usage": json.dumps({"call_count": 5})})
    assert regain_minutes(headers) == 42
    assert retry_at_from_usage(headers) == NOW + dt.timedelta(minutes=42)
    assert regain_minutes(httpx.Headers({"X-Business-Use-Case-Usage": "not json"})) is None


def test_messages_name_the_code_and_trace_but_never_the_token(adapter):
    response = answer(190, f"Malformed access token {TOKEN}", 467)
    error = graph_error(adapter, response, "post")
    text = str(error)
    assert "code 190/467" in text and "AbCdEfGh123" in text
    assert TOKEN not in text and "SECRET" not in text
