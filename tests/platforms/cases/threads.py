import json

import httpx

PLATFORM = "threads"
USER = "25012345678901234"


def options(tmp_path):
    return {"USER_ID": USER, "ACCESS_TOKEN": "THAA-SECRET-threads-token", "BASE_URL": "http://127.0.0.1:9",
            "POLL_INTERVAL": "0", "POLL_ATTEMPTS": "3"}


def success(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if request.method == "POST" and path == f"/v1.0/{USER}/threads":
        return httpx.Response(200, json={"id": "17889615691921648"})
    if request.method == "GET" and path == "/v1.0/17889615691921648":
        return httpx.Response(200, json={"status": "FINISHED", "id": "17889615691921648"})
    if request.method == "POST" and path == f"/v1.0/{USER}/threads_publish":
        return httpx.Response(200, json={"id": "18050206876007890"})
    if request.method == "GET" and path == "/v1.0/18050206876007890":
        return httpx.Response(200, json={"id": "18050206876007890",
                                         "permalink": "https://www.threads.net/@kotabpn/post/C9xYz"})
    return httpx.Response(400, json={"error": {"message": "Unsupported request", "code": 100}})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"error": {
        "message": "Error validating access token: Session has expired", "type": "OAuthException",
        "code": 190, "fbtrace_id": "A1b2C3"}})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"error": {
        "message": "Service temporarily unavailable", "type": "OAuthException", "code": 2,
        "is_transient": True, "fbtrace_id": "A1b2C3"}})


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def _graph_error(code: int, message: str, subcode: int | None = None, status: int = 400,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2C3"}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


def rate_limited(request: httpx.Request) -> httpx.Response:
    usage = {USER: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 30,
                            "estimated_time_to_regain_access": 2}]}  # minutes
    return _graph_error(4, "Application request limit reached",
                        headers={"X-Business-Use-Case-Usage": json.dumps(usage)})


def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/threads_publish")


def rejected(request: httpx.Request) -> httpx.Response:
    return _graph_error(100, "Invalid parameter")


duplicate = None  # no duplicate answer: the container is the idempotency handle
FOUND_ID = "18050206876007890"
CONTAINER = "17889615691921648"


def reconcile_state(key):
    return {f"container:{key}": CONTAINER}


def _container(status, recent=None):
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith(f"/{CONTAINER}"):
            if isinstance(status, httpx.Response):
                return status
            return httpx.Response(200, json={"status": status, "id": CONTAINER})
        if request.method == "GET" and path.endswith(f"/{USER}/threads"):
            return httpx.Response(200, json={"data": recent or []})
        return httpx.Response(400, json={"error": {"message": "Unsupported request", "code": 100}})
    return handler


def reconcile_found(text):
    return _container("PUBLISHED", [{"id": FOUND_ID, "text": text, "timestamp": "2026-08-22T01:00:00+0000",
                                     "permalink": "https://example.invalid/p/1"}])


def reconcile_absent(text):
    return _container("FINISHED")  # made but never published: the next attempt publishes it


def reconcile_unknown(text):
    return _container(_graph_error(2, "Service temporarily unavailable", status=503))
