"""The package as users install it: sdist → wheel → a fresh venv, run from a folder outside the checkout.

Nothing of the checkout is on the path: the venv has only the wheel and its declared
dependencies (fetched by pip from the configured index, pinned by requirements/run.txt used
as constraints, which adds no package), and ``promo`` runs with no PROMO_* settings, in an
empty folder. So a migration, template or page that is not in the wheel, or a dependency
missing from pyproject.toml, fails here although the editable checkout works.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the wheel is built from the sdist, as `python -m build` does for a release."""
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=dist)
    (sdist,) = dist.glob("promo_scheduler-*.tar.gz")
    (wheel,) = dist.glob("promo_scheduler-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, built: tuple[Path, Path]) -> Path:
    """A fresh venv outside the checkout holding the wheel and its dependencies; its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    assert not venv.is_relative_to(REPO)
    # No pip inside (promo does not need it): this test's pip installs into it, from pip's cache.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv)
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--disable-pip-version-check", "-c", str(REPO / "requirements" / "run.txt"), str(built[1])], cwd=venv)
    print(f"wheel and dependencies installed in {time.monotonic() - started:.1f}s")
    return venv / "bin"


@pytest.mark.slow
def test_the_wheel_carries_templates_migrations_and_pages(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (REPO / "templates").rglob("*.j2"):
        assert f"scheduler/_shipped/templates/{template.relative_to(REPO / 'templates').as_posix()}" in names
    for migration in (REPO / "migrations" / "versions").glob("*.py"):
        assert f"scheduler/_shipped/migrations/versions/{migration.name}" in names
    assert "scheduler/_shipped/migrations/env.py" in names
    for page in (REPO / "scheduler" / "web").rglob("*"):
        if page.is_file() and "__pycache__" not in page.parts:
            assert page.relative_to(REPO).as_posix() in names
    # Only the packages: no tests, no second copy of the folders at the top of site-packages.
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"scheduler", "jobs"}
    # The sdist keeps the one copy where the repository has it (the wheel above was built from it).
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"templates/product_highlight/_default.j2", "migrations/env.py", "pyproject.toml",
            "requirements/test.txt", "tests/specs/x-api-v2-openapi.json"} <= members
    assert not any(m.startswith("scheduler/_shipped") for m in members)


@pytest.mark.slow
def test_promo_from_the_wheel_works_in_any_folder(tmp_path: Path, installed: Path) -> None:
    elsewhere = tmp_path / "office"
    elsewhere.mkdir()
    assert not elsewhere.is_relative_to(REPO)
    env = {"PATH": f"{installed}{os.pathsep}{os.defpath}", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def promo(*args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        return run([str(installed / "promo"), *args], cwd=elsewhere, env=env | extra, timeout=60, check=check)

    where = run([str(installed / "python"), "-c", "import scheduler; print(scheduler.__file__)"],
                cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(installed.parent), f"scheduler imported from {where}, not the venv"

    assert "created the database promo.db" in promo("db", "upgrade").stdout
    assert (elsewhere / "promo.db").is_file()
    demo = promo("demo").stdout
    assert "queued post" in demo

    preview = promo("compose", "--product", "amplang-ikan-tenggiri", "--channel", "outbox").stdout
    assert "Harga: Rp 25.000" in preview  # the shipped Indonesian template
    assert "template product_highlight/_default.j2" in preview

    promo("post", "new", "--text", "Halo dari paket terpasang #UMKM", "--channel", "outbox", "--now")
    port = free_port()
    server = subprocess.Popen([str(installed / "promo"), "serve", "--health-port", "0", "--web", "--port", str(port)],
                              cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        outbox = elsewhere / "outbox.jsonl"
        wait_for(lambda: outbox.is_file() and "Halo dari paket terpasang" in outbox.read_text(encoding="utf-8"),
                 60, "the post in the outbox")

        def dashboard() -> httpx.Response | None:
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
            return None

        page = wait_for(dashboard, 30, "the web app")
        # scheduler/web/templates and the Indonesian catalog (.po, compiled on first use) shipped
        assert page.status_code == 200 and "<title>Masuk · promo-scheduler" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/static/app.css", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "stopped" in output

    # Staff take a copy of the templates to edit, and point PROMO_TEMPLATES_DIR at it.
    exported = promo("templates", "export", "ours").stdout
    shipped = sorted(p.relative_to(REPO / "templates") for p in (REPO / "templates").rglob("*.j2"))
    assert sorted(p.relative_to(elsewhere / "ours") for p in (elsewhere / "ours").rglob("*.j2")) == shipped
    assert f"wrote {Path('ours') / 'product_highlight' / '_default.j2'}" in exported
    assert f"PROMO_TEMPLATES_DIR={elsewhere / 'ours'}" in exported
    mine = elsewhere / "ours" / "product_highlight" / "_default.j2"
    mine.write_text("{{ product.name }}: murah meriah!\n", encoding="utf-8")

    again = promo("templates", "export", "ours", check=False)
    assert again.returncode == 1
    assert "already exist" in again.stderr and "--force" in again.stderr
    assert mine.read_text(encoding="utf-8") == "{{ product.name }}: murah meriah!\n"  # nothing overwritten

    edited = promo("compose", "--product", "amplang-ikan-tenggiri", "--channel", "outbox",
                   PROMO_TEMPLATES_DIR=str(elsewhere / "ours")).stdout
    assert "Amplang Ikan Tenggiri 250 g: murah meriah!" in edited

    forced = promo("templates", "export", "ours", "--force").stdout
    assert f"replaced {Path('ours') / 'product_highlight' / '_default.j2'}" in forced
    assert mine.read_bytes() == (REPO / "templates" / "product_highlight" / "_default.j2").read_bytes()
