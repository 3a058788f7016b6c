import datetime as dt

import httpx

PLATFORM = "mastodon"


def options(tmp_path):
    return {"BASE_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": "SECRET-mastodon-token", "POLL_INTERVAL": "0"}


def success(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/statuses":
        return httpx.Response(200, json={"id": "110000000000000001", "url": "http://127.0.0.1:9/@kota/110000000000000001",
                                         "uri": "http://127.0.0.1:9/users/kota/statuses/110000000000000001",
                                         "created_at": "2026-08-22T01:00:00.000Z", "content": "<p>x</p>", "card": None})
    return httpx.Response(404, json={"error": "Record not found"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"error": "The access token is invalid"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="<html><body>503 Service Unavailable</body></html>")


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/api/v1/statuses"


def rate_limited(request: httpx.Request) -> httpx.Response:
    reset = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)  # Mastodon sends an ISO time
    return httpx.Response(429, json={"error": "Too many requests"},
                          headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                                   "X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z")})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(422, json={"error": "Validation failed: Text character limit of 500 exceeded"})


duplicate = None  # Mastodon has no duplicate answer; the Idempotency-Key returns the same status
FOUND_ID = "110000000000000009"
ACCOUNT = {"id": "109000000000000001", "acct": "kota"}


def _statuses(statuses):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/accounts/verify_credentials":
            return httpx.Response(200, json=ACCOUNT)
        if request.url.path == f"/api/v1/accounts/{ACCOUNT['id']}/statuses":
            return statuses if isinstance(statuses, httpx.Response) else httpx.Response(200, json=statuses)
        return httpx.Response(404, json={"error": "Record not found"})
    return handler


def reconcile_found(text):
    return _statuses([{"id": FOUND_ID, "content": f"<p>{text}</p>", "created_at": "2026-08-22T01:00:00.000Z",
                       "url": f"http://127.0.0.1:9/@kota/{FOUND_ID}"}])


def reconcile_absent(text):
    return _statuses([{"id": "1", "content": "<p>Kemarin</p>", "created_at": "2026-08-21T01:00:00.000Z"}])


def reconcile_unknown(text):
    return _statuses(httpx.Response(503, text="Service Unavailable"))
