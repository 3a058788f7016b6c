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
