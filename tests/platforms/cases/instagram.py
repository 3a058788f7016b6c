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
