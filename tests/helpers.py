"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import Callable, Hashable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import httpx
from PIL import Image, PngImagePlugin

H = TypeVar("H", bound=Hashable)


#: Where a phone puts a photo taken in Balikpapan (EXIF GPS IFD: S 1°15'30", E 116°49'12").
GPS = {1: "S", 2: (1.0, 15.0, 30.0), 3: "E", 4: (116.0, 49.0, 12.0)}


def image_bytes(fmt: str = "PNG", width: int = 64, height: int = 48, *, orientation: int | None = None,
                gps: bool = False, text: dict[str, str] | None = None, noise: bool = False) -> bytes:
    """A real image (Pillow): brick red with a blue 8×8 top-left corner, optionally carrying the
    metadata a phone writes (EXIF orientation, camera, GPS position) or PNG text chunks."""
    if noise:  # incompressible pixels, for size limits
        img = Image.frombytes("RGB", (width, height), random.Random(width * height).randbytes(width * height * 3))
    else:
        img = Image.new("RGB", (width, height), (200, 80, 40))
        img.paste((0, 0, 255), (0, 0, 8, 8))
    opts: dict[str, Any] = {}
    if orientation is not None or gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        if orientation is not None:
            exif[0x0112] = orientation
        if gps:
            exif[0x8825] = GPS
        opts["exif"] = exif.tobytes()
    if text:
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        opts["pnginfo"] = info
    if fmt == "JPEG":
        opts["quality"] = 95
    out = io.BytesIO()
    img.save(out, fmt, **opts)
    return out.getvalue()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Recorder:
    """A MockTransport handler answering from (method, path) → response rules, recording requests.

    A rule is a response, a callable taking the request, or a list of those used in turn.
    """

    def __init__(self, routes: dict[tuple[str, str], Any]):
        self.routes = routes
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(answer, list):
            answer = answer.pop(0)
        return answer(request) if callable(answer) else answer


def between_repeats_all_others_appear(seq: list[H], universe: set[H]) -> bool:
    """No item appears a second time before every other item of ``universe`` appeared since."""
    seen_since: dict[H, set[H]] = {}
    for x in seq:
        if x in seen_since and seen_since[x] != universe - {x}:
            return False
        for other in seen_since:
            if other != x:
                seen_since[other].add(x)
        seen_since[x] = set()
    return True


def cli_in(monkeypatch: Any, folder: Any, values: dict[str, str]) -> None:
    """Set ``values`` in the environment, work in ``folder`` and create the database there
    (``promo db upgrade``), as a user would before any other command."""
    from scheduler import cli

    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(folder)
    assert cli.main(["db", "upgrade"]) == 0


def run_cli(capsys: Any, *args: str) -> tuple[int, str]:
    """Run ``promo ARGS`` in this process: its exit code and everything it printed."""
    from scheduler import cli

    capsys.readouterr()
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def album_photos(folder: Path, last: tuple[str, bytes]) -> list[Path]:
    """Five files for an album, written into ``folder``: a phone photo (14 MB, shown 3000×4000, GPS),
    a transparent PNG, a small JPEG fine as it is, a WebP, and ``last`` (name, bytes)."""
    rgba = Image.new("RGBA", (2400, 1800), (0, 0, 0, 0))
    rgba.paste(Image.open(io.BytesIO(image_bytes("PNG", 1200, 900, noise=True))), (600, 450))
    png, webp = io.BytesIO(), io.BytesIO()
    rgba.save(png, "PNG")
    Image.open(io.BytesIO(image_bytes("JPEG", 2000, 2000, noise=True))).save(webp, "WEBP", quality=95)
    files = {"phone.jpg": image_bytes("JPEG", 4000, 3000, orientation=6, gps=True, noise=True),
             "logo.png": png.getvalue(), "small.jpg": image_bytes("JPEG", 800, 600),
             "square.webp": webp.getvalue(), last[0]: last[1]}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def publish_due(settings: Any, db: Any, transport: httpx.AsyncBaseTransport | None = None) -> None:
    """One dispatcher tick over what is due, then its results written (as the service's first tick)."""
    from scheduler.dispatch import Dispatcher

    async def run() -> None:
        dispatcher = Dispatcher(settings, db, transport=transport, seed=1)
        dispatcher.start()
        await dispatcher.tick()
        await dispatcher.drain()

    asyncio.run(run())


def send_json(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Answer a fake server's request with ``body`` as JSON (the tests' stdlib fake platforms)."""
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
