import time

import httpx

PLATFORM = "x"


def options(tmp_path):
    return {
        "BASE_URL": "http://127.0.0.1:9",
        "ACCESS_TOKEN": "SECRET-x-access-token",
        "REFRESH_TOKEN": "SECRET-x-refresh-token",
        "CLIENT_ID": "x-client-id",
        "CLIENT_SECRET": "SECRET-x-client-secret",
        "USERNAME": "kotabalikpapan",
    }


def success(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/2/tweets":
        return httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "Kue Lapis Spesial",
                                                  "edit_history_post_ids": ["1445880548472328192"]}})
    return httpx.Response(404, json={"title": "Not Found Error", "type": "about:blank", "status": 404,
                                     "detail": f"unexpected {request.url.path}"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    # The access token is dead, and so is the refresh token: X answers the refresh with invalid_request.
    if request.url.path == "/2/oauth2/token":
        return httpx.Response(400, json={"error": "invalid_request",
                                         "error_description": "Value passed for the token was invalid."})
    return httpx.Response(401, json={"title": "Unauthorized", "type": "about:blank", "status": 401,
                                     "detail": "Unauthorized"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"title": "Service Unavailable", "type": "about:blank", "status": 503,
                                     "detail": "Service Unavailable"})


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/2/tweets"


def rate_limited(request: httpx.Request) -> httpx.Response:
    reset = int(time.time()) + 120
    return httpx.Response(429, json={"title": "Too Many Requests", "type": "about:blank", "status": 429,
                                     "detail": "Too Many Requests"},
                          headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                   "x-rate-limit-reset": str(reset)})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"title": "Invalid Request", "status": 400,
                                     "type": "https://api.x.com/2/problems/invalid-request",
                                     "detail": "One or more parameters to your request was invalid."})


def duplicate(request: httpx.Request) -> httpx.Response:
    return httpx.Response(403, json={"detail": "You are not allowed to create a Tweet with duplicate content.",
                                     "type": "about:blank", "title": "Forbidden", "status": 403})


FOUND_ID = "1445880548472328199"


def _timeline(answer):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/users/me":
            return httpx.Response(200, json={"data": {"id": "2244994945", "username": "kotabalikpapan",
                                                      "name": "Kota"}})
        if request.url.path == "/2/users/2244994945/tweets":
            return answer
        return httpx.Response(404, json={"title": "Not Found Error", "type": "about:blank", "status": 404})
    return handler


def reconcile_found(text):
    shown = text.replace("https://umkm.example/kue", "https://t.co/AbCdEf1234")  # X shows t.co links
    return _timeline(httpx.Response(200, json={"data": [{"id": FOUND_ID, "text": shown,
                                                         "created_at": "2026-08-22T01:00:00.000Z"}],
                                               "meta": {"result_count": 1}}))


def reconcile_absent(text):
    return _timeline(httpx.Response(200, json={"meta": {"result_count": 0}}))


def reconcile_unknown(text):
    return _timeline(httpx.Response(503, json={"title": "Service Unavailable", "type": "about:blank",
                                               "status": 503, "detail": "Service Unavailable"}))
