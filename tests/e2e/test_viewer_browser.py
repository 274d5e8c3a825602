"""The activity audit log viewer in a real browser: Debian's Chromium, headless, driven by
Playwright for Python through ``executable_path``.

Playwright rather than Selenium: it talks to Chromium over the DevTools protocol itself, so no
``chromium-driver`` of the exact browser version is needed, and it waits for downloads and
elements without sleeps. Its own browser download is never used (``playwright install`` is not
run); ``deploy/local/chromium.sh install`` installs the browser these tests drive.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    expect,
    sync_playwright,
)

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.store.sqlite_store import SqliteStore
from devservices.ports import free_port
from tests.api_server import serve
from tests.factories import make_event

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


@pytest.fixture
def browser() -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile, for one test: Playwright's event loop starts
    worker threads (saving a download does), which end only with the loop, so a browser shared
    between tests would leave them to the test that happened to start them."""
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


HOSTILE = "<img src=x onerror=alert(1)>"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ADA = {
    "user_id": "u-ada",
    "name": "Ada",
    "email": "ada@example.com",
    "role": "admin",
    "auth_method": "password",
}
GRACE = {
    "user_id": "u-grace",
    "name": "Grace",
    "email": "grace@example.com",
    "role": "member",
    "auth_method": "sso",
}
LOGINS = 100  # Ada's, one an hour: two pages and a bit
STOPS = 12  # Grace stops a recipe twice a day, on Nov 21-26


def _events() -> list[dict[str, Any]]:
    events = [
        make_event(actor=ADA, occurred_at=START + timedelta(hours=i), activity="user_login")
        for i in range(LOGINS)
    ]
    events += [
        make_event(
            actor=GRACE,
            occurred_at=START + timedelta(days=1 + i // 2, hours=3 + i % 2),
            category="recipe",
            activity="recipe_stopped",
            resource={"type": "recipe", "id": f"r-{i}", "name": f"Onboarding {i}", "folder": "HR"},
            request={
                "ip": "198.51.100.7",
                "user_agent": "Mozilla/5.0",
                "request_id": f"q-{i}",
                "session_id": "s-2",
            },
        )
        for i in range(STOPS)
    ]
    events.append(
        make_event(
            actor=GRACE,
            occurred_at=START + timedelta(days=6, hours=12),
            category="recipe",
            activity="recipe_renamed",
            resource={"type": "recipe", "id": "r-evil", "name": HOSTILE, "folder": None},
            changes=[{"field": "name", "old_value": "Payroll", "new_value": HOSTILE}],
        )
    )
    return events


@dataclass
class Viewer:
    url: str
    owner_token: str
    member_token: str
    store: SqliteStore
    stop_server: Callable[[], None]


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[Viewer]:
    """The API on 127.0.0.1 with a SQLite audit store holding :func:`_events` of acme."""
    log = EmbeddedLog(tmp_path / "log.sqlite")
    store = SqliteStore(tmp_path / "audit.sqlite")
    options = ApiOptions()
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    try:
        ensure_core_topics(log)
        owner, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
        member, _ = create_token(log, account_id="acme", user_id="bob", role="member")
        assert store.append(_events()).inserted == LOGINS + STOPS + 1
        with ExitStack() as server:
            url = server.enter_context(serve(create_app(service, options), free_port()))
            yield Viewer(url, owner, member, store, server.close)
    finally:
        service.close()
        store.close()
        log.close()


@dataclass
class Watch:
    """What a page did that it must not: dialogs (a script an event smuggled in would
    alert) and Content-Security-Policy violations."""

    dialogs: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.blocked.append(message.text)


def _signed_in(page: Page, viewer: Viewer, token: str | None = None) -> Watch:
    watch = Watch()
    watch.attach(page)
    response = page.goto(f"{viewer.url}/accounts/acme/activity")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.fill("#token", token or viewer.owner_token)
    page.click("button[type=submit]")
    return watch


def _rows(page: Page) -> Locator:
    return page.locator("#events tbody tr")


def _status(page: Page) -> Locator:
    return page.locator("#status")


def test_pages_with_load_more_and_shows_changes_as_text(page: Page, viewer: Viewer) -> None:
    watch = _signed_in(page, viewer)
    # The newest 50 of 113, then two more pages.
    expect(_status(page)).to_have_text("50 events, more to load")
    expect(_rows(page)).to_have_count(50)
    page.click("#more")
    expect(_rows(page)).to_have_count(100)
    page.click("#more")
    expect(_rows(page)).to_have_count(LOGINS + STOPS + 1)
    expect(page.locator("#more")).to_be_hidden()
    expect(_status(page)).to_have_text(f"{LOGINS + STOPS + 1} events")
    times = _rows(page).locator("td.time").all_text_contents()
    assert times == sorted(times, reverse=True)

    # An attacker's resource name is text: no element, no script.
    hostile = _rows(page).filter(has_text="recipe: " + HOSTILE)
    expect(hostile).to_have_count(1)
    expect(page.locator("#events img")).to_have_count(0)

    # The detail panel: the changes, old -> new.
    hostile.click()
    expect(page.locator("#detail")).to_be_visible()
    change = page.locator("#changes tbody tr")
    expect(change).to_have_count(1)
    expect(change.locator("td.field")).to_have_text("name")
    expect(change.locator("td.old")).to_have_text("Payroll")
    expect(change.locator("td.new")).to_have_text(HOSTILE)
    expect(page.locator("#detail img")).to_have_count(0)
    expect(page.locator("#detail-fields")).to_contain_text("Renamed")
    expect(page.locator("#detail-fields")).to_contain_text("Recipe")  # the category's name
    _rows(page).filter(has_text="Onboarding 3").click()
    expect(page.locator("#no-changes")).to_be_visible()
    expect(page.locator("#detail-fields")).to_contain_text("r-3")

    assert watch.dialogs == []
    assert watch.blocked == []


def test_filters_by_user_activity_and_dates_then_exports_csv(
    page: Page, viewer: Viewer, tmp_path: Path
) -> None:
    watch = _signed_in(page, viewer)
    expect(_status(page)).to_have_text("50 events, more to load")

    # One user.
    page.fill("#actor", GRACE["email"])
    page.click("#apply")
    expect(_status(page)).to_have_text(f"{STOPS + 1} events")
    expect(_rows(page).filter(has_text="Ada")).to_have_count(0)
    assert "actor=grace%40example.com" in page.url  # a reload keeps the filters

    # One activity of that user, from the menu that groups activities by category.
    assert page.locator("#activity optgroup[label=Recipe] option").count() > 1
    page.select_option("#activity", "activity:recipe_stopped")
    expect(_status(page)).to_have_text(f"{STOPS} events")
    expect(_rows(page).locator("td.activity")).to_have_text(["Stopped"] * STOPS)
    # The menu counts what else the user did (the facets ignore the activity choice).
    expect(page.locator("#activity option[value='activity:recipe_renamed']")).to_have_text(
        "Renamed (1)"
    )

    # A date range: Nov 21 and 22 hold four stops ("to" includes its day).
    page.fill("#from", "2026-11-21")
    page.fill("#to", "2026-11-22")
    page.click("#apply")
    expect(_status(page)).to_have_text("4 events")

    # Export CSV downloads what the filters show.
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8-sig") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == 4
    assert {row["actor_email"] for row in exported} == {GRACE["email"]}
    assert {row["activity"] for row in exported} == {"recipe_stopped"}
    assert {row["occurred_at"][:10] for row in exported} == {"2026-11-21", "2026-11-22"}

    # A reload shows the same; then a whole category of all users.
    page.reload()
    expect(_status(page)).to_have_text("4 events")
    page.fill("#actor", "")
    page.fill("#from", "")
    page.fill("#to", "")
    page.select_option("#activity", "category:account")
    expect(_status(page)).to_have_text("50 events, more to load")
    expect(_rows(page).filter(has_text="Grace")).to_have_count(0)

    # Hostile filter text is a filter like any other: nothing found, nothing run.
    page.fill("#q", "' OR 1=1 -- <script>alert(1)</script>")
    page.click("#apply")
    expect(_status(page)).to_have_text("No events match these filters.")
    assert watch.dialogs == []
    assert watch.blocked == []


def test_a_member_without_the_privilege_and_a_wrong_token_are_refused(
    page: Page, viewer: Viewer
) -> None:
    _signed_in(page, viewer, viewer.member_token)
    expect(page.locator("#sign-in-error")).to_contain_text("role may not view")
    _signed_in(page, viewer, "ast_0000000000000000_not-a-token")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    expect(page.locator("#events")).to_have_count(0)


def test_a_store_that_goes_away_is_reported_and_nothing_shown_changes(
    page: Page, viewer: Viewer
) -> None:
    _signed_in(page, viewer)
    expect(_rows(page)).to_have_count(50)
    viewer.store.close()
    page.click("#more")
    expect(_status(page)).to_have_class(re.compile(r"\berror\b"))
    expect(_status(page)).to_contain_text("503")
    expect(_rows(page)).to_have_count(50)  # the rows read before are kept


def test_an_api_that_goes_away_is_reported_and_the_rows_stay(page: Page, viewer: Viewer) -> None:
    _signed_in(page, viewer)
    expect(_rows(page)).to_have_count(50)
    viewer.stop_server()
    page.click("#more")
    expect(_status(page)).to_have_text(
        "The API cannot be reached: check the connection and try again."
    )
    expect(_rows(page)).to_have_count(50)


def _demo(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "auditstream", "demo", "--events", "2000", "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_demo_serve_shows_what_the_demo_simulated(page: Page, tmp_path: Path) -> None:
    port = free_port()
    process = _demo(tmp_path / "demo", "--serve", "--port", str(port))
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any(line.startswith("ast_") for line in lines):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        output = "".join(lines)
        assert "2000 events indexed into" in output
        url = f"http://127.0.0.1:{port}/accounts/acme/activity"
        assert url in output
        token = next(line.strip() for line in lines if line.startswith("ast_"))

        page.goto(url)
        page.fill("#token", token)
        page.click("button[type=submit]")
        expect(_status(page)).to_have_text("50 events, more to load")
        expect(page.locator(".who")).to_have_text("demo-owner (owner)")
        _rows(page).first.click()
        expect(page.locator("#detail")).to_be_visible()
        screenshot = os.environ.get("AUDITSTREAM_VIEWER_SCREENSHOT")
        if screenshot:  # how docs/viewer.png is made
            _take_screenshot(page, Path(screenshot))

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(lines)
        reader.join(timeout=10)
        assert "stopped" in "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)


def test_demo_serve_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _demo(tmp_path / "demo", "--serve", "--port", str(port))
        try:
            output, _ = process.communicate(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 2, output
    assert f"cannot serve on 127.0.0.1:{port}" in output
    assert "choose another port with --port" in output
    assert "ast_" not in output  # no token made for a server that never ran


def _take_screenshot(page: Page, path: Path) -> None:
    """The page with an event whose changes the detail panel shows."""
    page.set_viewport_size({"width": 1400, "height": 860})
    for row in _rows(page).filter(has_text="Updated").all()[:20]:
        row.click()
        expect(page.locator("#detail-fields")).to_contain_text("Updated")
        if page.locator("#changes tbody tr").count():
            break
    page.screenshot(path=str(path))
