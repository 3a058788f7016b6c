import httpx

PLATFORM = "webhook"


def options(tmp_path):
    return {"URL": "http://127.0.0.1:9/hooks/SECRET-hook-path", "SECRET": "SECRET-webhook-signing"}


def success(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "42", "url": "http://127.0.0.1:9/p/42"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"error": "bad signature"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="upstream unavailable")


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST"


def rate_limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "120"})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"error": "text is required"})


duplicate = None
reconcile_found = reconcile_absent = reconcile_unknown = None  # a plain receiver cannot be asked
