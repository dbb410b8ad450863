"""The project settings pages of the web UI in a real browser (Debian's Chromium driven by Playwright) against a
real `corral serve`: general settings (description, visibility, default branch, rename with its confirmation,
archive, delete), branch protections, webhooks delivering to a local receiver (the delivery log, redeliver, a
refused URL's message in the form), project secrets (write-only values) and members with their roles. A viewer
and a developer without project:admin see no Settings tab and are refused with a message. Hostile text renders
as text, nothing runs off a 390 px screen. Screenshots go to the test's tmp dir. Every wait is bounded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.corral_process import CorralProcess
from tests.e2e.test_ui_browser import (
    ADMIN,
    TIMEOUT_MS,
    VIEWER,
    Shots,
    admin_token,
    api,
    browser,  # noqa: F401 (the fixture)
    git,
    no_xss,
    sign_in,
    ui_server,
)

pytestmark = pytest.mark.e2e

XSS = "<script>window.__xss=7</script><img src=x onerror=window.__xss=8>"
DEV = {"name": "dev", "password": "developer-password-1", "email": "dev@example.com"}
HOOK_SECRET = "hook-signing-secret-42"
SECRET_VALUES = ("first-value-never-shown", "second-value-never-shown")
SETTINGS = ("", "/branch-protections", "/webhooks", "/secrets", "/members")


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    # the webhook receiver of this test listens on 127.0.0.1
    for proc in ui_server(tmp_path, db_dsn, valkey_url, CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS="true"):
        yield proc  # then the server is stopped and checked, and its log must hold no secret either
    log = proc.log_text()
    assert HOOK_SECRET not in log and not any(v in log for v in SECRET_VALUES)


async def receiver() -> tuple[web.AppRunner, str, list[tuple[dict[str, str], bytes]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(text="thanks from the receiver")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook", got


async def until(what: str, check: Any, timeout: float = 30) -> Any:
    for _ in range(int(timeout / 0.2)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def seed(server: CorralProcess, tmp: Path) -> str:
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "demo", "description": f"demo {XSS}"}, token)
    api(server, "POST", "/api/v1/projects", {"name": "scratch"}, token)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Demo\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first")
    git(work, "checkout", "-qb", "develop")
    (work / "dev.txt").write_text("develop\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "develop")
    git(work, "push", "-q", server.base_url.replace("http://", f"http://ada:{token}@") + "/ada/demo.git",
        "main", "develop")
    for who in (VIEWER, DEV):
        api(server, "POST", "/api/v1/users", {"name": who["name"], "email": who["email"],
                                              "password": who["password"]}, token)
    api(server, "POST", "/api/v1/users", {"name": "eve", "email": "eve@example.com", "password": "eve-password-12",
                                          "display_name": f"Eve {XSS}"}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": DEV["name"], "role": "developer", "project": "ada/demo"},
        token)
    return token


async def narrow(page: Any, server: CorralProcess, shots: Shots, base: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    for path in SETTINGS:
        await page.goto(f"{server.base_url}{base}/settings{path}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{base}/settings{path} is {width}px wide at 390px"
    await shots(page, "59-settings-members-390")
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_project_settings_as_admin_developer_and_viewer(server: CorralProcess, browser: Any,  # noqa: F811
                                                              tmp_path: Path) -> None:
    from playwright.async_api import expect

    token = seed(server, tmp_path)
    base_api = "/api/v1/projects/ada/demo"
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.on("dialog", lambda d: d.accept())
    await sign_in(page, server, ADMIN, "/ui/?next=/ui/ada/demo")

    # general: the tab, the hostile description as text, then description, visibility and default branch saved
    await page.click("#settings-tab")
    await expect(page.locator("#general-form")).to_be_visible()
    assert await page.input_value("#description") == f"demo {XSS}"
    await no_xss(page)
    await shots(page, "50-settings-general")
    await page.fill("#description", "settings from the UI")
    await page.select_option("#visibility", "public")
    await page.select_option("#default_branch", "develop")
    await page.click("#save-general")
    await expect(page.locator("#done")).to_contain_text("saved")
    project = api(server, "GET", base_api, token=token)
    assert (project["description"], project["visibility"], project["default_branch"]) == (
        "settings from the UI", "public", "develop")

    # branch protections: add (a refused allowlist shows the service's message), change, remove
    await page.click("#settings-tabs a:has-text('Branch protections')")
    await page.fill("#protection-form input[name=pattern]", "release/*")
    await page.check("#protection-form input[name=require_merge_request]")
    await page.fill("#protection-form input[name=required_approvals]", "1")
    await page.fill("#protection-form input[name=push_allowlist]", "nobody-by-that-name")
    await page.click("#protect-button")
    await expect(page.locator("#form-error")).to_contain_text("nobody-by-that-name")
    await page.fill("#protection-form input[name=pattern]", "release/*")
    await page.check("#protection-form input[name=require_merge_request]")
    await page.fill("#protection-form input[name=required_approvals]", "1")
    await page.fill("#protection-form input[name=push_allowlist]", "dev")
    await page.click("#protect-button")
    await expect(page.locator("#rule-list")).to_contain_text("release/*")
    (rule,) = api(server, "GET", f"{base_api}/branch-protections", token=token)["items"]
    assert rule["require_merge_request"] and rule["required_approvals"] == 1 and rule["push_allowlist"] == ["dev"]
    await page.click("details.edit-rule summary")
    await page.fill("details.edit-rule input[name=required_approvals]", "2")
    await page.check("details.edit-rule input[name=allow_deletion]")
    await page.click("details.edit-rule button[type=submit]")
    await expect(page.locator("#done")).to_contain_text("changed release/*")
    (rule,) = api(server, "GET", f"{base_api}/branch-protections", token=token)["items"]
    assert rule["required_approvals"] == 2 and rule["allow_deletion"] and rule["push_allowlist"] == ["dev"]
    await shots(page, "51-settings-protections")
    await page.click(".remove-rule")
    await expect(page.locator("#no-rules")).to_be_visible()
    assert api(server, "GET", f"{base_api}/branch-protections", token=token)["items"] == []

    # webhooks: a refused URL's message in the form; one to a local receiver, its delivery log, redeliver
    runner, url, got = await receiver()
    try:
        await page.click("#settings-tabs a:has-text('Webhooks')")
        await page.fill("#hook-url", "ftp://example.com/hook")
        await page.fill("#hook-secret", HOOK_SECRET)
        await page.click("#add-hook")
        await expect(page.locator("#form-error")).to_contain_text("url")
        assert await page.input_value("#hook-url") == "ftp://example.com/hook"
        assert HOOK_SECRET not in await page.content()
        await page.fill("#hook-url", url)
        await page.fill("#hook-secret", HOOK_SECRET)
        await page.check("#webhook-form input[value=issue]")
        await page.click("#add-hook")
        await expect(page.locator("#done")).to_contain_text("added")
        assert HOOK_SECRET not in await page.content()
        (hook,) = api(server, "GET", f"{base_api}/webhooks", token=token)["items"]
        assert hook["has_secret"] and sorted(hook["events"]) == ["issue", "push"] and hook["active"]
        api(server, "POST", f"{base_api}/issues", {"title": f"Hook {XSS}"}, token)
        await until("the issue event to be delivered", lambda: got)
        headers, body = got[0]
        assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(HOOK_SECRET.encode(), body,
                                                                     hashlib.sha256).hexdigest()
        for _ in range(50):  # the delivery is recorded as delivered just after the receiver answered
            await page.reload()
            if await page.locator("#delivery-list .s-delivered").count():
                break
            await asyncio.sleep(0.2)
        first = page.locator("#delivery-list li.delivery").first
        await expect(first.locator(".status-code")).to_contain_text("HTTP 200")
        await first.locator("summary").click()
        await expect(first.locator("pre.payload")).to_contain_text(f"Hook {XSS}")
        await expect(first.locator("pre.response")).to_contain_text("thanks from the receiver")
        await no_xss(page)
        await shots(page, "52-settings-webhook-deliveries")
        await first.locator(".redeliver").click()
        await expect(page.locator("#done")).to_contain_text("redelivery queued")
        await until("the redelivery", lambda: len(got) >= 2)
        assert got[1][1] == body
        # change: paused, the secret kept (empty field)
        await page.click("#edit-hook summary")
        await page.uncheck("#webhook-edit-form input[name=active]")
        await page.click("#save-hook")
        await expect(page.locator("#done")).to_contain_text("saved")
        hook = api(server, "GET", f"{base_api}/webhooks/{hook['id']}", token=token)
        assert not hook["active"] and hook["has_secret"]
        await page.click("#edit-hook summary")
        await page.click("#delete-hook")
        await expect(page.locator("#no-hooks")).to_be_visible()
        assert api(server, "GET", f"{base_api}/webhooks", token=token)["items"] == []
    finally:
        await runner.cleanup()

    # secrets: set, rotate, a refused name (the value is not sent back), delete; never a value in the page
    await page.click("#settings-tabs a:has-text('Secrets')")
    field = page.locator("#secret-value")
    assert await field.get_attribute("type") == "password" and await field.get_attribute("autocomplete") == "off"
    await page.fill("#secret-name", "DEPLOY_TOKEN")
    await page.select_option("#secret-scope", "deploy")
    await page.fill("#secret-value", SECRET_VALUES[0])
    await page.click("#save-secret")
    await expect(page.locator("#done")).to_contain_text("created DEPLOY_TOKEN (version 1)")
    await page.fill("#secret-name", "DEPLOY_TOKEN")
    await page.select_option("#secret-scope", "deploy")
    await page.fill("#secret-value", SECRET_VALUES[1])
    await page.click("#save-secret")
    await expect(page.locator("#done")).to_contain_text("rotated DEPLOY_TOKEN (version 2)")
    await expect(page.locator("#secret-DEPLOY_TOKEN .secret-version")).to_contain_text("2")
    await page.fill("#secret-name", "not a name!")
    await page.fill("#secret-value", SECRET_VALUES[0])
    await page.click("#save-secret")
    await expect(page.locator("#form-error")).to_be_visible()
    assert await page.input_value("#secret-value") == ""
    html = await page.content()
    assert not any(v in html for v in SECRET_VALUES)
    (secret,) = api(server, "GET", f"{base_api}/secrets", token=token)["items"]
    assert (secret["name"], secret["version"], secret["scope"]) == ("DEPLOY_TOKEN", 2, "deploy")
    await shots(page, "53-settings-secrets")
    await page.click(".delete-secret")
    await expect(page.locator("#no-secrets")).to_be_visible()
    assert api(server, "GET", f"{base_api}/secrets", token=token)["items"] == []

    # members: the developer listed with their role; eve found by search, added, her role changed, removed
    await page.click("#settings-tabs a:has-text('Members')")
    await expect(page.locator("#member-dev .member-roles")).to_contain_text("developer")
    await page.fill("#find-user-form input[name=find]", "eve")
    await page.click("#find-user-form button")
    await expect(page.locator("#user-candidates")).to_contain_text(f"Eve {XSS}")
    await page.select_option("#user-candidates select", "viewer")
    await page.click("#user-candidates .add-candidate")
    await expect(page.locator("#done")).to_contain_text("gave eve the role viewer")
    await expect(page.locator("#member-eve .member-roles")).to_contain_text("viewer")
    await expect(page.locator("#member-eve")).to_contain_text(f"Eve {XSS}")
    await no_xss(page)
    await page.select_option("#member-eve select", "developer")
    await page.click("#member-eve .change-role")
    await expect(page.locator("#done")).to_contain_text("eve is now developer")
    members = {m["user"]["name"]: m["roles"] for m in api(server, "GET", f"{base_api}/members", token=token)["items"]}
    assert members["eve"] == ["developer"] and members["dev"] == ["developer"]
    await page.fill("#member-user", "no-such-user")
    await page.click("#add-member")
    await expect(page.locator("#form-error")).to_contain_text("no-such-user")
    await shots(page, "54-settings-members")
    await page.click("#member-eve .remove-member")
    await expect(page.locator("#done")).to_contain_text("removed the role developer of eve")
    assert await page.locator("#member-eve").count() == 0
    await narrow(page, server, shots, "/ui/ada/demo")

    # without JavaScript: every settings page reads, and a form works (no confirm dialog: it just posts)
    nojs = await browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    nojs.set_default_timeout(TIMEOUT_MS)
    npage = await nojs.new_page()
    await sign_in(npage, server, ADMIN, "/ui/?next=/ui/ada/demo/settings")
    for path in SETTINGS:
        response = await npage.goto(f"{server.base_url}/ui/ada/demo/settings{path}")
        assert response is not None and response.status == 200, path
        await expect(npage.locator("#settings-tabs a[aria-current=page]")).to_have_count(1)
    await npage.goto(f"{server.base_url}/ui/ada/demo/settings/branch-protections")
    await npage.fill("#protection-form input[name=pattern]", "main")
    await npage.click("#protect-button")
    await expect(npage.locator("#rule-list")).to_contain_text("main")
    await npage.click(".remove-rule")
    await expect(npage.locator("#no-rules")).to_be_visible()
    await nojs.close()

    # every change above went through the services: their audit rows are there
    actions = {e["action"] for e in api(server, "GET", "/api/v1/audit?project=ada/demo&limit=200",
                                        token=token)["items"]}
    assert {"project.update", "webhook.create", "webhook.update", "webhook.delete", "webhook.redeliver",
            "role_binding.create", "role_binding.delete"} <= actions, actions

    # the viewer and the developer: no Settings tab; the pages and the forms answer 403 with the permission
    for who in (VIEWER, DEV):
        other = await browser.new_context(viewport={"width": 1280, "height": 900})
        other.set_default_timeout(TIMEOUT_MS)
        opage = await other.new_page()
        await sign_in(opage, server, who, "/ui/?next=/ui/ada/demo")
        await expect(opage.locator("nav.tabs")).to_contain_text("Issues")
        assert await opage.locator("#settings-tab").count() == 0
        for path in SETTINGS:
            response = await opage.goto(f"{server.base_url}/ui/ada/demo/settings{path}")
            assert response is not None and response.status == 403, (who["name"], path)
            await expect(opage.locator("#error-page")).to_contain_text("project:admin")
        await shots(opage, f"55-settings-refused-{who['name']}")
        csrf = next(c["value"] for c in await other.cookies() if c["name"] == "corral_csrf")
        for path, form in (("/secrets", {"name": "X", "value": "v", "scope": "all"}),
                           ("/members", {"user": who["name"], "role": "admin"}), ("", {"visibility": "private"})):
            refused = await opage.request.post(f"{server.base_url}/ui/ada/demo/settings{path}",
                                               form={"csrf_token": csrf, **form}, headers={"Accept": "text/html"},
                                               max_redirects=0)
            assert refused.status == 403, (who["name"], path)
        await other.close()
    assert api(server, "GET", f"{base_api}/secrets", token=token)["items"] == []
    assert api(server, "GET", base_api, token=token)["visibility"] == "public"

    # a form without its CSRF token is refused
    refused = await page.request.post(f"{server.base_url}/ui/ada/demo/settings", form={"visibility": "private"},
                                      headers={"Accept": "text/html"}, max_redirects=0)
    assert refused.status == 403 and "csrf_token" in await refused.text()

    # rename: a wrong confirmation is refused in the form; then the new name, and the old URL redirects
    await page.goto(server.base_url + "/ui/ada/demo/settings")
    await page.fill("#new-name", "demo-renamed")
    await page.fill("#rename-confirm", "not-the-name")
    await page.click("#rename-button")
    await expect(page.locator("#rename-error")).to_contain_text("demo")
    await page.fill("#new-name", "demo-renamed")
    await page.fill("#rename-confirm", "demo")
    await page.click("#rename-button")
    await expect(page.locator("#done")).to_contain_text("renamed from demo")
    assert page.url.endswith("/ui/ada/demo-renamed/settings?done=renamed+from+demo")
    assert api(server, "GET", "/api/v1/projects/ada/demo-renamed", token=token)["name"] == "demo-renamed"

    # archive and unarchive
    await page.click("#archive-button")
    await expect(page.locator(".project-head")).to_contain_text("archived")
    assert api(server, "GET", "/api/v1/projects/ada/demo-renamed", token=token)["archived"] is True
    await page.click("#archive-button")
    await expect(page.locator("#done")).to_contain_text("unarchived")
    assert api(server, "GET", "/api/v1/projects/ada/demo-renamed", token=token)["archived"] is False
    await shots(page, "56-settings-renamed")

    # delete (another project): the confirmation is the full name
    await page.goto(server.base_url + "/ui/ada/scratch/settings")
    await page.fill("#delete-confirm", "scratch")
    await page.click("#delete-button")
    await expect(page.locator("#danger-error")).to_contain_text("ada/scratch")
    await page.fill("#delete-confirm", "ada/scratch")
    await page.click("#delete-button")
    await page.wait_for_url("**/ui/projects**")
    with pytest.raises(urllib.error.HTTPError) as gone:
        api(server, "GET", "/api/v1/projects/ada/scratch", token=token)
    assert gone.value.code == 404
    await context.close()
    assert len(shots.taken) >= 8 and all(p.stat().st_size > 0 for p in shots.taken)
