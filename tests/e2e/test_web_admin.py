"""The admin pages in a real browser (Debian's chromium; skipped, saying why, when it is not
installed) against a real `promo web` on 127.0.0.1, its first admin made with `promo users add
… --password-stdin`: the admin adds a user who then logs in, checks a channel with its button,
and the Channels, Users and Audit pages fit a phone (390 px). A failing test leaves a screenshot
in its tmp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TEMPLATES
from tests.helpers import wait_for
from tests.webapp import free_port

PASSWORD = "kunci-SUPERVISOR-2027"
RINA = "sandi-RINA-editor-1"


@dataclass
class Site:
    url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("webadmin")
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db",
           "PROMO_TEMPLATES_DIR": str(TEMPLATES), "PROMO_CHANNELS": "outbox",
           "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl")}

    def promo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=env, cwd=tmp, input=stdin,
                              capture_output=True, text=True, timeout=60)

    assert promo("db", "upgrade").returncode == 0
    made = promo("users", "add", "supervisor", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "web", "--port", str(port)], env=env, cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(url + "/login", timeout=5, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 30, "promo web")
        yield Site(url)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
        assert server.returncode == 0, output
        assert PASSWORD not in output and RINA not in output


@pytest.fixture
def d(shots: Any) -> Any:
    """The browser (tests/e2e/conftest.py: one per module, a screenshot when a test fails)."""
    return shots


def log_in(d: Any, site: Site, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d.delete_all_cookies()
    d.get(site.url + "/login")
    d.find_element(By.ID, "name").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "submit").click()
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.ID, "me"))


def submit_and_wait(d: Any, button: Any) -> str:
    """Click a form's button; the one-time message on the page the form leads to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()
    WebDriverWait(d, 30).until(ec.staleness_of(button))
    WebDriverWait(d, 30).until(lambda drv: drv.execute_script("return document.readyState") == "complete")
    flashes = d.find_elements(By.CSS_SELECTOR, "p.flash")
    return str(flashes[0].text) if flashes else ""


def test_an_admin_adds_a_user_who_then_logs_in(site: Site, d: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(d, site, "supervisor", PASSWORD)
    d.find_element(By.ID, "nav-users").click()
    d.find_element(By.ID, "new-name").send_keys("rina")
    Select(d.find_element(By.ID, "new-role")).select_by_value("editor")
    d.find_element(By.ID, "new-password").send_keys(RINA)
    message = submit_and_wait(d, d.find_element(By.ID, "add-user-submit"))
    assert message == "Pengguna rina ditambahkan."
    row = d.find_element(By.ID, "user-rina").text
    assert "rina" in row and RINA not in d.page_source
    log_in(d, site, "rina", RINA)
    assert d.find_element(By.ID, "me").text.startswith("rina")
    assert not d.find_elements(By.ID, "nav-users") and d.find_elements(By.ID, "nav-channels")


def test_the_check_button_says_whether_a_channel_works(site: Site, d: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(d, site, "supervisor", PASSWORD)
    d.get(site.url + "/channels")
    assert "aktif" in d.find_element(By.ID, "channel-outbox").text
    message = submit_and_wait(d, d.find_element(By.ID, "check-outbox"))
    assert message.startswith("outbox: OK"), message


def test_the_admin_pages_fit_a_phone(site: Site, d: Any) -> None:
    log_in(d, site, "supervisor", PASSWORD)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    try:
        for path in ("/channels", "/channels/new?platform=mastodon", "/users", "/audit"):
            d.get(site.url + path)
            width = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] == 390, (path, width)
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
