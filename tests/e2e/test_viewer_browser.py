"""The activity audit log viewer in a real browser: Debian's Chromium, headless, driven by
Playwright for Python through ``executable_path``.

Playwright rather than Selenium: it talks to Chromium over the DevTools protocol itself, so no
``chromium-driver`` of the exact browser version is needed, and it waits for downloads and
elements without sleeps. Its own browser download is never used (``playwright install`` is not
run); ``deploy/local/chromium.sh install`` installs the browser these tests drive.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from devservices.ports import free_port
from tests.api_server import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: run `deploy/local/chromium.sh install` (as root)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    """One headless Chromium for the module, with a fresh profile it never shares."""
    profile = Path(tempfile.mkdtemp(prefix="auditstream-chromium-"))
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                accept_downloads=True,
            )
            try:
                yield context
            finally:
                context.close()  # ends Chromium; leaving the block ends Playwright's driver
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    tab = browser.new_page()
    yield tab
    tab.close()


def test_the_browser_opens_a_page_of_the_api(page: Page, tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions()
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    try:
        with serve(create_app(service, options), free_port()) as url:
            response = page.goto(f"{url}/healthz")
            assert response is not None
            assert response.status == 200
            assert '"ok"' in page.content()
    finally:
        service.close()
        log.close()
