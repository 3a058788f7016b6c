import json

import httpx

PLATFORM = "instagram"
IG = "17841400000000001"


def options(tmp_path):
    return {"IG_USER_ID": IG, "ACCESS_TOKEN": "IGAA-SECRET-ig-token", "GRAPH_HOST": "graph.instagram.com",
            "BASE_URL": "http://127.0.0.1:9", "POLL_INTERVAL": "0", "POLL_ATTEMPTS": "3"}


def success(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if request.method == "POST" and path == f"/v21.0/{IG}/media":
        return httpx.Response(200, json={"id": "17889455560051444"})
    if request.method == "GET" and path == "/v21.0/17889455560051444":
        return httpx.Response(200, json={"status_code": "FINISHED", "id": "17889455560051444"})
    if request.method == "POST" and path == f"/v21.0/{IG}/media_publish":
        return httpx.Response(200, json={"id": "17920238422030506"})
    if request.method == "GET" and path == "/v21.0/17920238422030506":
        return httpx.Response(200, json={"id": "17920238422030506",
                                         "permalink": "https://www.instagram.com/p/C1a2B3c4D5e/"})
    return httpx.Response(400, json={"error": {"message": "Unsupported request", "code": 100}})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"error": {
        "message": "Error validating access token: The session has been invalidated.",
        "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "A1b2C3"}})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": {
        "message": "An unknown error occurred", "type": "OAuthException", "code": 1,
        "error_subcode": 2207001, "is_transient": True, "fbtrace_id": "A1b2C3"}})


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def _graph_error(code: int, message: str, subcode: int | None = None, status: int = 400,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2C3"}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


def rate_limited(request: httpx.Request) -> httpx.Response:
    usage = {IG: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 30,
                            "estimated_time_to_regain_access": 2}]}  # minutes
    return _graph_error(4, "Application request limit reached",
                        headers={"X-Business-Use-Case-Usage": json.dumps(usage)})


def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/media_publish")


def rejected(request: httpx.Request) -> httpx.Response:
    return _graph_error(100, "Invalid parameter")


duplicate = None  # no duplicate answer: the container is the idempotency handle
FOUND_ID = "17920238422030506"
CONTAINER = "17889455560051444"


def reconcile_state(key):
    return {f"container:{key}": CONTAINER}


def _container(status, recent=None):
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith(f"/{CONTAINER}"):
            if isinstance(status, httpx.Response):
                return status
            return httpx.Response(200, json={"status_code": status, "id": CONTAINER})
        if request.method == "GET" and path.endswith(f"/{IG}/media"):
            return httpx.Response(200, json={"data": recent or []})
        return httpx.Response(400, json={"error": {"message": "Unsupported request", "code": 100}})
    return handler


def reconcile_found(text):
    return _container("PUBLISHED", [{"id": FOUND_ID, "caption": text, "timestamp": "2026-08-22T01:00:00+0000",
                                     "permalink": "https://example.invalid/p/1"}])


def reconcile_absent(text):
    return _container("FINISHED")  # made but never published: the next attempt publishes it


def reconcile_unknown(text):
    return _container(_graph_error(2, "Service temporarily unavailable", status=503))
