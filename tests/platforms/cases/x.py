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
