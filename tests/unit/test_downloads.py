"""Images named by URL are downloaded once, within limits, and never from a private address
unless allowed (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.config import Settings, load_settings
from scheduler.downloads import download_image, is_url
from scheduler.errors import ValidationError
from scheduler.post_images import store_image
from tests.helpers import image_bytes

JPEG = image_bytes("JPEG", 64, 48)
ROUTES: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "/kue.jpg": (200, "image/jpeg", JPEG, {}),
    "/page.html": (200, "text/html", b"<html>not an image</html>", {}),
    "/big.jpg": (200, "image/jpeg", b"\xff\xd8" + b"0" * 5000, {}),
    "/liar.jpg": (200, "image/jpeg", b"<html>not an image</html>", {}),
    "/moved": (302, "text/plain", b"", {"Location": "/kue.jpg"}),
    "/gone.jpg": (404, "text/plain", b"no", {}),
}


class Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Handler.hits.append(self.path)
        status, kind, body, headers = ROUTES.get(self.path, (404, "text/plain", b"", {}))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.hits = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def settings(tmp_path: Path, allow: bool = True, max_bytes: int = 1_000_000) -> Settings:
    return load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "PROMO_MEDIA_DIR": str(tmp_path / "media"),
                          "PROMO_MEDIA_ALLOW_PRIVATE_URLS": "true" if allow else "false",
                          "PROMO_MAX_IMAGE_BYTES": str(max_bytes)})


def test_an_image_url_is_downloaded_once_and_stored_like_a_file(server: str, tmp_path: Path) -> None:
    s = settings(tmp_path)
    path, mime = store_image(s, f"{server}/kue.jpg")
    assert mime == "image/jpeg" and path.read_bytes() == JPEG and path.parent == s.media_dir
    assert store_image(s, f"{server}/kue.jpg")[0] == path
    assert Handler.hits == ["/kue.jpg"]  # the second time from the media folder
    assert download_image(s, f"{server}/moved").read_bytes() == JPEG  # a redirect is followed (and checked)


@pytest.mark.parametrize(("path", "problem"), [
    ("/page.html", "not an image (content type text/html)"),
    ("/big.jpg", "over the 1,000-byte limit (PROMO_MAX_IMAGE_BYTES)"),
    ("/liar.jpg", "not a JPEG, PNG, GIF or WebP image"),
    ("/gone.jpg", "the server answered HTTP 404"),
])
def test_what_is_not_a_small_enough_image_is_refused_saying_why(server: str, tmp_path: Path, path: str,
                                                                 problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        download_image(settings(tmp_path, max_bytes=1000), server + path)
    assert not list((tmp_path / "media").glob("*")) if (tmp_path / "media").exists() else True


def test_private_and_loopback_addresses_and_other_schemes_are_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="127.0.0.1 is a private or loopback address .*"
                                              "PROMO_MEDIA_ALLOW_PRIVATE_URLS"):
        download_image(settings(tmp_path, allow=False), f"{server}/kue.jpg")
    assert Handler.hits == []
    for url in ("ftp://example.com/kue.jpg", "file:///etc/passwd"):
        assert is_url(url)
        with pytest.raises(ValidationError, match="only http and https"):
            store_image(settings(tmp_path), url)
    assert not is_url("examples/amplang.jpg") and not is_url("C:/foto/kue.jpg")
