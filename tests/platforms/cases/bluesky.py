"""Contract case for Bluesky: XRPC answers in the shapes the reference PDS gives."""

import base64
import json
import time

import httpx

PLATFORM = "bluesky"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


def jwt(kind: str, lifetime: int) -> str:
    """A JWT-shaped token whose ``exp`` the adapter reads; the signature part marks it secret."""
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'typ': 'at+jwt', 'alg': 'HS256'})}.{part({'sub': DID, 'exp': int(time.time()) + lifetime})}.SECRET-{kind}"


def options(tmp_path):
    return {"HANDLE": "umkmkota.bsky.social", "APP_PASSWORD": "SECRET-abcd-efgh-ijkl", "BASE_URL": "http://127.0.0.1:9"}


def state():
    return {"accessJwt": jwt("access", 7200), "refreshJwt": jwt("refresh", 90 * 86400), "did": DID,
            "handle": "umkmkota.bsky.social", "identifier": "umkmkota.bsky.social"}


def success(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/xrpc/com.atproto.repo.createRecord":
        rkey = json.loads(request.content)["rkey"]
        return httpx.Response(200, json={
            "uri": f"at://{DID}/app.bsky.feed.post/{rkey}",
            "cid": "bafyreic7rkmb3or5pwkztxphdrcvnp4ylbhrtrjghkij7tssyhmdawshje",
            "commit": {"cid": "bafyreiecy2e2qpuhgf2z2rkn74sjmz6seclmi7dzeumyx6nhnbxbal6ih4", "rev": "3n3dkoeaxmk2m"},
            "validationStatus": "valid"})
    return httpx.Response(501, json={"error": "MethodNotImplemented", "message": "Method Not Implemented"})


def auth_failure(request: httpx.Request) -> httpx.Response:
    # An unknown or revoked token, then the login with the (changed) app password refused.
    if request.url.path == "/xrpc/com.atproto.server.createSession":
        return httpx.Response(401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
    return httpx.Response(400, json={"error": "InvalidToken", "message": "Token could not be verified"})


def server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": "InternalServerError", "message": "Internal Server Error"})


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
def is_create(request: httpx.Request) -> bool:
    return request.url.path == "/xrpc/com.atproto.repo.createRecord"


def rate_limited(request: httpx.Request) -> httpx.Response:
    reset = int(time.time()) + 120
    return httpx.Response(429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                          headers={"RateLimit-Limit": "5000", "RateLimit-Remaining": "0",
                                   "RateLimit-Reset": str(reset), "RateLimit-Policy": "5000;w=3600",
                                   "Retry-After": "120"})


def rejected(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"error": "InvalidRequest",
                                     "message": "Invalid app.bsky.feed.post record: Record/text must not be "
                                                "longer than 3000 graphemes"})


duplicate = None  # the rkey is ours: a second create with it finds the first record
FOUND_ID = f"at://{DID}/app.bsky.feed.post/"  # + our rkey (checked by prefix)


def _get_record(answer):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/xrpc/com.atproto.repo.getRecord":
            if answer == "found":
                rkey = request.url.params["rkey"]
                return httpx.Response(200, json={"uri": f"at://{DID}/app.bsky.feed.post/{rkey}",
                                                 "cid": "bafyreic7rkmb3or5pwkztxphdrcvnp4ylbhrtrjghkij7tssyhmdawshje",
                                                 "value": {"$type": "app.bsky.feed.post", "text": "x"}})
            return answer
        return httpx.Response(501, json={"error": "MethodNotImplemented", "message": "Method Not Implemented"})
    return handler


def reconcile_found(text):
    return _get_record("found")


def reconcile_absent(text):
    return _get_record(httpx.Response(400, json={"error": "RecordNotFound", "message": "Could not locate record"}))


def reconcile_unknown(text):
    return _get_record(httpx.Response(500, json={"error": "InternalServerError",
                                                 "message": "Internal Server Error"}))
