import httpx

PLATFORM = "discord"

WEBHOOK = {"type": 1, "id": "1143334455667788990", "name": "Promo Kota", "channel_id": "1100000000000000002",
           "guild_id": "1000000000000000001", "application_id": None}


def options(tmp_path):
    return {"WEBHOOK_URL": "https://discord.com/api/webhooks/1143334455667788990/SECRET-discord-webhook-token",
            "BASE_URL": "http://127.0.0.1:9"}


def success(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":
        return httpx.Response(200, json=WEBHOOK)
    return httpx.Response(200, json={"id": "1200000000000000003", "type": 0, "content": "x",
                                     "channel_id": WEBHOOK["channel_id"], "webhook_id": WEBHOOK["id"],
                                     "timestamp": "2026-08-22T01:00:00.000000+00:00"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"message": "Invalid Webhook Token", "code": 50027})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text="<html>502 Bad Gateway</html>")


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST"


def rate_limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json={"message": "You are being rate limited.", "retry_after": 120.0,
                                     "global": False},
                          headers={"Retry-After": "120", "X-RateLimit-Scope": "user"})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"code": 50035, "message": "Invalid Form Body", "errors": {"content": {
        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}})


duplicate = None
reconcile_found = reconcile_absent = reconcile_unknown = None  # a webhook cannot list messages
