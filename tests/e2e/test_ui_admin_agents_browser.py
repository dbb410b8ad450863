"""The agent session and administration pages of the web UI in a real browser (Debian's Chromium driven by
Playwright) against a real `corral serve` whose `claude` is the stand-in (tests/e2e/claude_standin.py): a
session started from the project's form, its live view (conversation, cost, links), a follow-up message with a
hostile payload rendered as text, stop; users (create, deactivate, lift a login ban), roles, role bindings,
delegations and the explain view; a viewer refused with the permission named. Screenshots go to the test's tmp
dir. Every wait is bounded."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.test_ui_browser import (
    ADMIN,
    TIMEOUT_MS,
    VIEWER,
    Shots,
    admin_token,
    api,
    browser,  # noqa: F401 (the fixture)
    no_xss,
    sign_in,
    standin_claude,
    ui_server,
)
from tests.e2e.test_ui_ops_browser import until

pytestmark = pytest.mark.e2e

XSS_MESSAGE = "<script>window.__xss=7</script><img src=x onerror=window.__xss=8>"


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    yield from ui_server(tmp_path, db_dsn, valkey_url, CORRAL_AGENT_CLAUDE_COMMAND=str(standin_claude(tmp_path)),
                         CORRAL_OBSERVE_SELF="false", CORRAL_OTLP_DECODE_PROCESSES="0")


def seed(server: CorralProcess) -> dict[str, Any]:
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "demo"}, token)
    api(server, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    return {"token": token}


def bad_logins(server: CorralProcess, name: str, count: int) -> None:
    for _ in range(count):
        req = urllib.request.Request(server.base_url + "/api/v1/auth/login", method="POST",
                                     data=json.dumps({"name": name, "password": "wrong-password-x"}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except urllib.error.HTTPError:
            pass


async def test_agent_and_admin_pages(server: CorralProcess, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from playwright.async_api import expect

    data = seed(server)
    shots = Shots(tmp_path / "screenshots")
    admin = await browser.new_context(viewport={"width": 1280, "height": 900})
    admin.set_default_timeout(TIMEOUT_MS)
    page = await admin.new_page()
    await sign_in(page, server, ADMIN, "/ui/?next=/ui/ada/demo/agent-sessions/new")

    # a new session from the form: prompt, permissions (only those held), limits
    await expect(page.locator("#delegate input[value='project:write']")).to_be_checked()
    await page.fill("#prompt", "wait for it")
    await page.fill("input[name=max_turns]", "7")
    await shots(page, "50-agent-new")
    await page.click("#start-button")
    try:
        await page.wait_for_url("**/ui/agent-sessions/*", timeout=TIMEOUT_MS)
    except Exception:
        raise AssertionError(await page.inner_text("main")) from None
    session_url = page.url
    session_id = session_url.rsplit("/", 1)[-1]
    await expect(page.locator("#session-prompt")).to_have_text("wait for it")
    await expect(page.locator("#session-cost")).to_contain_text("of 7 turns")
    await expect(page.locator("#telemetry-link")).to_have_attribute("href", f"/ui/observe/logs?session_id={session_id}"
                                                                            "&project=ada/demo")
    # live: the assistant's text arrives by the SSE stream (or is there on a reload)
    until("the agent to speak", lambda: any(
        e["type"] == "text" for e in api(server, "GET", f"/api/v1/agent-sessions/{session_id}/events",
                                         token=data["token"])["items"]), timeout=60)
    await expect(page.locator("#turns")).to_contain_text("This will take a while.", timeout=TIMEOUT_MS)
    # a follow-up message holding a payload renders as text
    await page.fill("#message-content", XSS_MESSAGE)
    await page.click("#message-button")
    await page.wait_for_url(session_url, timeout=TIMEOUT_MS)
    await expect(page.locator("#turns")).to_contain_text("<script>window.__xss=7</script>")
    await no_xss(page)
    await shots(page, "51-agent-session")

    # the list
    await page.goto(server.base_url + "/ui/agent-sessions")
    await expect(page.locator("#agent-session-list")).to_contain_text("ada/demo")
    await shots(page, "52-agent-sessions")
    # the dashboard lists it among the active sessions while it runs
    await page.goto(server.base_url + "/ui/")
    await expect(page.locator("#active-agent-sessions")).to_contain_text(f"ada/demo · {session_id[:8]}")

    # the viewer reads the session, sees stop disabled with the permission named, and a stop post is refused
    viewer = await browser.new_context(viewport={"width": 1280, "height": 900})
    viewer.set_default_timeout(TIMEOUT_MS)
    vpage = await viewer.new_page()
    await sign_in(vpage, server, VIEWER, f"/ui/?next=/ui/agent-sessions/{session_id}")
    await expect(vpage.locator("#actions .denied")).to_contain_text("agent:run")
    await expect(vpage.locator("#stop-button")).to_be_disabled()
    await no_xss(vpage)
    await shots(vpage, "53-viewer-agent-session")
    csrf = next(c["value"] for c in await viewer.cookies() if c["name"] == "corral_csrf")
    refused = await vpage.request.post(f"{server.base_url}/ui/agent-sessions/{session_id}/stop",
                                       form={"csrf_token": csrf}, headers={"Accept": "text/html"},
                                       max_redirects=0)
    assert refused.status == 403 and "agent:run" in await refused.text()
    for path in ("/ui/admin/users", "/ui/admin/role-bindings", "/ui/admin/delegations", "/ui/admin/explain"):
        await vpage.goto(server.base_url + path)
        await expect(vpage.locator("main")).to_contain_text("admin:users")
    await shots(vpage, "54-viewer-admin-refused")
    await vpage.goto(server.base_url + "/ui/admin/roles")
    await expect(vpage.locator(".denied")).to_contain_text("admin:roles")
    await viewer.close()

    # stop the session
    await page.goto(session_url)
    page.on("dialog", lambda d: d.accept())
    await page.click("#stop-button")
    await page.wait_for_url(session_url, timeout=TIMEOUT_MS)
    await expect(page.locator("#session-status")).to_contain_text("stopped")
    assert api(server, "GET", f"/api/v1/agent-sessions/{session_id}", token=data["token"])["status"] == "stopped"
    await page.goto(server.base_url + "/ui/")
    await expect(page.locator("#active-agent-sessions")).to_contain_text("No agent session is running.")

    # administration: create a user, deactivate them, lift a login ban
    await page.goto(server.base_url + "/ui/admin/users")
    await page.fill("#create-user-form input[name=name]", "carol")
    await page.fill("#create-user-form input[name=email]", "carol@example.com")
    await page.fill("#create-user-form input[name=password]", "carol-password-123")
    await page.click("#create-user-button")
    await expect(page.locator("#done")).to_contain_text("created carol")
    await page.click("#user-carol .toggle-active")
    await expect(page.locator("#user-carol")).to_contain_text("deactivated")
    bad_logins(server, VIEWER["name"], 12)
    await page.click("#user-vic .lift-ban")
    await expect(page.locator("#done")).to_contain_text("login ban")
    await expect(page.locator("#done")).to_contain_text("of vic")
    await shots(page, "55-admin-users")
    await sign_in(await (await browser.new_context()).new_page(), server, VIEWER)  # the ban is gone

    await page.goto(server.base_url + "/ui/admin/roles")
    await expect(page.locator("#role-viewer")).to_contain_text("project:read")
    await shots(page, "56-admin-roles")
    await page.goto(server.base_url + "/ui/admin/role-bindings")
    await page.fill("#bind-form input[name=user]", "carol")
    await page.select_option("#bind-form select[name=role]", "developer")
    await page.fill("#bind-form input[name=project]", "ada/demo")
    await page.click("#bind-button")
    await expect(page.locator("#binding-list")).to_contain_text("ada/demo")
    await shots(page, "57-admin-bindings")
    await page.goto(server.base_url + "/ui/admin/delegations")
    await expect(page.locator("#delegation-list")).to_contain_text("project:write")
    await shots(page, "58-admin-delegations")
    await page.goto(server.base_url + "/ui/admin/explain?user=vic&permission=project:read&project=ada/demo")
    await expect(page.locator("#explanation h2")).to_contain_text("vic can use project:read in ada/demo")
    await expect(page.locator("#because")).to_contain_text("viewer")
    await shots(page, "59-admin-explain")
    await admin.close()
    assert len(shots.taken) >= 10
