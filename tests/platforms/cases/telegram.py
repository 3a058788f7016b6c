import httpx

PLATFORM = "telegram"


def options(tmp_path):
    return {"BASE_URL": "http://127.0.0.1:9", "BOT_TOKEN": "123456789:SECRET-telegram-token-abcdef",
            "CHAT_ID": "@umkmbalikpapan"}


def success(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": {
        "message_id": 321, "date": 1772413200, "text": "Kue Lapis Spesial",
        "chat": {"id": -1001234567890, "title": "UMKM Balikpapan", "username": "umkmbalikpapan", "type": "channel"},
        "sender_chat": {"id": -1001234567890, "title": "UMKM Balikpapan", "type": "channel"}}})


def auth_failure(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, json={"ok": False, "error_code": 502, "description": "Bad Gateway"})


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith(("/sendMessage", "/sendPhoto"))


def rate_limited(request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, json={"ok": False, "error_code": 429,
                                     "description": "Too Many Requests: retry after 120",
                                     "parameters": {"retry_after": 120}})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"ok": False, "error_code": 400,
                                     "description": "Bad Request: message is too long"})


duplicate = None
reconcile_found = reconcile_absent = reconcile_unknown = None  # the Bot API cannot read a channel's history
