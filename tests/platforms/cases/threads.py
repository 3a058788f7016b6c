import httpx

from tests.platforms.cases import _graph

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
rate_limited = _graph.rate_limited(USER, 4)
rejected = _graph.rejected


def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/threads_publish")


duplicate = None  # no duplicate answer: the container is the idempotency handle
FOUND_ID = "18050206876007890"
CONTAINER = "17889615691921648"

_RECONCILE = _graph.ContainerReconcile(USER, CONTAINER, FOUND_ID, status_field="status", list_path="threads",
                                       text_field="text")
reconcile_state = _RECONCILE.state
reconcile_found = _RECONCILE.found
reconcile_absent = _RECONCILE.absent
reconcile_unknown = _RECONCILE.unknown
