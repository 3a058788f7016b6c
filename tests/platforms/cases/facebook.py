import httpx

PLATFORM = "facebook"
PAGE = "104857600123"


def options(tmp_path):
    return {"PAGE_ID": PAGE, "ACCESS_TOKEN": "EAAB-SECRET-page-token", "BASE_URL": "http://127.0.0.1:9"}


def success(request: httpx.Request) -> httpx.Response:
    if request.method == "POST" and request.url.path == f"/v21.0/{PAGE}/feed":
        return httpx.Response(200, json={"id": f"{PAGE}_998877",
                                         "permalink_url": f"https://www.facebook.com/{PAGE}/posts/998877"})
    if request.method == "GET" and request.url.path == f"/v21.0/{PAGE}":
        return httpx.Response(200, json={"id": PAGE, "name": "Diskominfo Kota"})
    return httpx.Response(404, json={"error": {"message": "Unknown path", "code": 803}})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"error": {
        "message": "Error validating access token: Session has expired on Tuesday, 01-Oct-24.",
        "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1b2C3"}})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException", "code": 2, "is_transient": True, "fbtrace_id": "A1b2C3"}})
