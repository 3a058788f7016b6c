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
