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
