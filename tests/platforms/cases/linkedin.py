import datetime as dt

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


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/rest/posts"


def rate_limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json={"status": 429,
                                     "message": "Resource level throttle APPLICATION DAY limit reached"})


def rate_limit_expected(now: dt.datetime) -> dt.datetime:
    """LinkedIn sends no reset time: the first 429 waits 5 minutes (growing with each 429 in a
    row), never past 00:00 UTC, when its daily quotas reset."""
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(now + dt.timedelta(minutes=5), midnight)


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"status": 400, "message": "commentary is too long"})


def duplicate(request: httpx.Request) -> httpx.Response:
    return httpx.Response(422, json={
        "status": 422, "code": "UNPROCESSABLE_ENTITY",
        "message": "Content is a duplicate of urn:li:share:7141138937766391808",
        "errorDetails": {"inputErrors": [{"code": "DUPLICATE_POST", "description": "Duplicate post"}]}})


FOUND_ID = "urn:li:share:7141138937766391899"


def _posts(answer):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/rest/posts":
            return answer
        return httpx.Response(404, json={"status": 404, "message": "Not Found"})
    return handler


def _ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def reconcile_found(text):
    return _posts(httpx.Response(200, json={"elements": [
        {"id": FOUND_ID, "commentary": text, "createdAt": _ms("2026-08-22T01:00:00+00:00")}]}))


def reconcile_absent(text):
    return _posts(httpx.Response(200, json={"elements": [
        {"id": "urn:li:share:1", "commentary": "Kemarin", "createdAt": _ms("2026-08-21T01:00:00+00:00")}]}))


def reconcile_unknown(text):
    return _posts(httpx.Response(503, json={"status": 503, "message": "Service Unavailable"}))
