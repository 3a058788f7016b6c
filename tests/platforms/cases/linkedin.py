import httpx

PLATFORM = "linkedin"


def options(tmp_path):
    return {"BASE_URL": "http://127.0.0.1:9", "ORGANIZATION_ID": "2414183", "ACCESS_TOKEN": "SECRET-linkedin-token"}


def success(request: httpx.Request) -> httpx.Response:
    if request.method == "POST" and request.url.path == "/rest/posts":
        return httpx.Response(201, headers={"x-restli-id": "urn:li:share:7141138937766391808"})
    return httpx.Response(404, json={"status": 404, "message": "Not Found"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
                                     "message": "The token used in the request has been revoked by the user"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"status": 503, "message": "Service Unavailable"})
