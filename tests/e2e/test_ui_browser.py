"""A human signs in to the web UI in a real browser (Chromium driven by Playwright) against a real server."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.corral_process import CorralProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ADMIN = {"name": "ada", "password": "correct-horse-battery-staple", "email": "ada@example.com"}


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    proc = CorralProcess.start(tmp_path, {
        "CORRAL_DATABASE_URL": db_dsn,
        "CORRAL_VALKEY_URL": valkey_url,
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN["name"],
        "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": ADMIN["email"],
    })
    yield proc
    code = proc.stop()
    assert code == 0, proc.log_text()[-3000:]
    assert ADMIN["password"] not in proc.log_text()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - dev extra missing
        if REQUIRE_SERVICES:
            pytest.fail(f"playwright missing: {exc}")
        pytest.skip("playwright not installed")
    if not Path(CHROMIUM).exists():
        if REQUIRE_SERVICES:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


async def test_sign_in_see_permissions_create_token_and_audit(server: CorralProcess, browser) -> None:
    page = await browser.new_page()
    await page.goto(server.base_url + "/")
    await page.wait_for_selector("#login-form")
    # a wrong password is refused with the server's message, and nothing else is shown
    await page.fill("input[name=name]", ADMIN["name"])
    await page.fill("input[name=password]", "wrong-password")
    await page.click("button[type=submit]")
    from playwright.async_api import expect

    await expect(page.locator("#login-error")).to_have_text(re.compile(r"\S"))
    assert await page.is_hidden("#nav")

    await page.fill("input[name=password]", ADMIN["password"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#me-name")
    assert await page.inner_text("#me-name") == ADMIN["name"]
    assert "project:read" in await page.inner_text("#me-permissions")

    # create an API token through the UI (cookie session + CSRF header), then use it from outside the browser
    await page.click("a[href='#/tokens']")
    await page.wait_for_selector("#token-form")
    await page.fill("#token-form input[name=name]", "from-the-ui")
    await page.fill("#token-form input[name=scopes]", "project:read")
    await page.click("#token-form button")
    await page.wait_for_selector("#new-token")
    token = await page.inner_text("#new-token")
    assert token.startswith("crl_")
    req = urllib.request.Request(server.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        me = json.loads(resp.read())
    assert me["name"] == ADMIN["name"]
    assert me["permissions"] == ["project:read"]

    # the audit view lists the login and the token creation
    await page.click("a[href='#/audit']")
    await page.wait_for_selector("h1:has-text('Audit log')")  # the tokens view also has a table
    audit = await page.inner_text("#view")
    assert "token" in audit
    assert "login" in audit

    # change the password on the account page: a wrong current one is refused with the server's message
    new_password = "an-even-better-passphrase"
    await page.click("a[href='#/account']")
    await page.wait_for_selector("#password-form")
    await page.fill("#password-form input[name=current_password]", "not-the-password")
    await page.fill("#password-form input[name=new_password]", new_password)
    await page.fill("#password-form input[name=repeat_password]", new_password)
    await page.click("#password-form button")
    await expect(page.locator("#password-error")).to_contain_text("current_password")
    await page.fill("#password-form input[name=current_password]", ADMIN["password"])
    await page.fill("#password-form input[name=new_password]", new_password)
    await page.fill("#password-form input[name=repeat_password]", new_password)
    await page.click("#password-form button")
    await expect(page.locator("#password-done")).to_contain_text("Password changed")
    # the re-issued session and its CSRF token work for the next change; the token made earlier still works
    await page.click("a[href='#/tokens']")
    await page.fill("#token-form input[name=name]", "after-the-change")
    await page.click("#token-form button")
    await page.wait_for_selector("#new-token")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["name"] == ADMIN["name"]

    await page.click("#logout")
    await page.wait_for_selector("#login-form")
    assert await page.is_visible("#login-form")
    await page.fill("input[name=name]", ADMIN["name"])
    await page.fill("input[name=password]", ADMIN["password"])  # the old password no longer works
    await page.click("button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text(re.compile(r"\S"))
    await page.fill("input[name=password]", new_password)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#token-form")  # signed in again, back on the page we left (#/tokens)
    assert await page.is_visible("#nav")
    await page.close()
