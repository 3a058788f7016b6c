import httpx

from tests.platforms.cases import _graph

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
rate_limited = _graph.rate_limited(IG, 4)
rejected = _graph.rejected


def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/media_publish")


duplicate = None  # no duplicate answer: the container is the idempotency handle
FOUND_ID = "17920238422030506"
CONTAINER = "17889455560051444"

_RECONCILE = _graph.ContainerReconcile(IG, CONTAINER, FOUND_ID, status_field="status_code", list_path="media",
                                       text_field="caption")
reconcile_state = _RECONCILE.state
reconcile_found = _RECONCILE.found
reconcile_absent = _RECONCILE.absent
reconcile_unknown = _RECONCILE.unknown
