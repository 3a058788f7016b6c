"""Validate the X adapter's requests (and our fake answers) against X's official OpenAPI description.

The description is ``tests/specs/x-api-v2-openapi.json`` (see its README). Loading it takes
seconds, so it is loaded once per test session. Requests are checked whatever host they went
to: the adapter's ``BASE_URL`` replaces only scheme, host and port, never the path.

Not covered by the description: ``POST /2/oauth2/token`` (the token endpoint is only named in
the security scheme), and X's real error bodies (``"type": "about:blank"`` problems, the
``usage-capped`` problem) which fit neither its ``Problem`` nor its ``Error`` schema; openapi-core
also cannot read ``application/problem+json`` bodies. Those are asserted field by field in the
tests instead, and :func:`validate_problem` checks the problem types the description does define.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from urllib.parse import parse_qs

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC = Path(__file__).resolve().parents[1] / "specs" / "x-api-v2-openapi.json"
NOT_IN_SPEC = {("post", "/2/oauth2/token")}


@functools.cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


@functools.cache
def _raw() -> dict:
    return json.loads(SPEC.read_text(encoding="utf-8"))


class _Request:
    """An httpx.Request seen through openapi-core's request protocol."""

    host_url = "https://api.x.com"  # the description's server; our tests send to BASE_URL hosts

    def __init__(self, request: httpx.Request):
        request.read()
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode(), keep_blank_values=True)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("content-type", "")


class _Response:
    def __init__(self, response: httpx.Response):
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "")

    @property
    def headers(self) -> Headers:
        return Headers(dict(self._response.headers))

    @property
    def data(self) -> bytes:
        return self._response.content


def in_spec(request: httpx.Request) -> bool:
    return (request.method.lower(), request.url.path) not in NOT_IN_SPEC


def _check_auth(request: httpx.Request) -> None:
    # openapi-core skips the "OAuth" http scheme and oauth2 schemes: check the header's shape here.
    auth = request.headers.get("authorization", "")
    assert auth.startswith(("Bearer ", "OAuth ")), f"no user-context Authorization header: {auth[:12]!r}"


def validate_request(request: httpx.Request) -> None:
    """Raise (openapi-core's error) when ``request`` does not match X's description."""
    _check_auth(request)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unsupported scheme type" for the OAuth 1.0a scheme
        spec().validate_request(_Request(request))


def validate_response(request: httpx.Request, response: httpx.Response) -> None:
    """Check a successful fake answer against the description (errors: see the module docstring)."""
    assert response.is_success, "only successful answers are described usably"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec().validate_response(_Request(request), _Response(response))


def validate_problem(body: dict) -> None:
    """Validate a problem-details body whose ``type`` the description defines."""
    problem = _raw()["components"]["schemas"]["Problem"]
    ref = problem["discriminator"]["mapping"][body["type"]]
    schema = _raw()["components"]["schemas"][ref.rsplit("/", 1)[1]]
    OAS30Validator(schema).validate(body)
