"""The web UI in a real browser (Debian's Chromium driven by Playwright) against a real `corral serve`:
signed in as an admin and as a viewer, every page renders data created through the API, the main action of each
page works, a viewer is refused with a message, hostile text renders as text, forms need their CSRF token, two
tabs both work, and an unknown page is a 404 page. Screenshots of every page go to the test's tmp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.corral_process import CorralProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ADMIN = {"name": "ada", "password": "correct-horse-battery-staple", "email": "ada@example.com"}
VIEWER = {"name": "vic", "password": "viewer-password-123", "email": "vic@example.com"}
XSS_TITLE = "Bug <script>window.__xss=1</script>"
XSS_BODY = "**bold** <img src=x onerror=\"window.__xss=2\">"
XSS_FILE = "<img src=x onerror=window.__xss=3>.txt"
TIMEOUT_MS = 15_000


STANDIN = Path(__file__).with_name("claude_standin.py")


def standin_claude(root: Path) -> Path:
    """The stand-in `claude` (tests/e2e/claude_standin.py) as an executable under ``root``, for
    CORRAL_AGENT_CLAUDE_COMMAND."""
    claude = root / "bin" / "claude"
    claude.parent.mkdir(parents=True, exist_ok=True)
    claude.write_text(f"#!{sys.executable}\n{STANDIN.read_text()}")
    claude.chmod(0o755)
    return claude


def ui_server(tmp_path: Path, db_dsn: str, valkey_url: str, **settings: str) -> Iterator[CorralProcess]:
    """A `corral serve` for a browser test (yield from it in a fixture): PostgreSQL and Valkey, the admin
    bootstrapped, plus ``settings`` (CORRAL_* names); it must stop cleanly and never log the admin's password."""
    data = tmp_path / "data"
    data.mkdir()
    proc = CorralProcess.start(data, {
        "CORRAL_DATABASE_URL": db_dsn,
        "CORRAL_VALKEY_URL": valkey_url,
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN["name"],
        "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": ADMIN["email"],
        **settings,
    })
    yield proc
    code = proc.stop()
    assert code == 0, proc.log_text()[-3000:]
    assert ADMIN["password"] not in proc.log_text()


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    yield from ui_server(tmp_path, db_dsn, valkey_url)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
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


def api(server: CorralProcess, method: str, path: str, body: object = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def admin_token(server: CorralProcess) -> str:
    """An API token for the admin, made through the API (login, then POST /api/v1/tokens with CSRF)."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    req = urllib.request.Request(server.base_url + "/api/v1/auth/login", method="POST",
                                 data=json.dumps({"name": ADMIN["name"], "password": ADMIN["password"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=10) as resp:
        csrf = json.loads(resp.read())["csrf_token"]
    req = urllib.request.Request(server.base_url + "/api/v1/me")
    with opener.open(req, timeout=10) as resp:
        scopes = json.loads(resp.read())["permissions"]  # everything the admin holds (granting needs it)
    req = urllib.request.Request(server.base_url + "/api/v1/tokens", method="POST",
                                 data=json.dumps({"name": "seed", "scopes": scopes}).encode(),
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
    with opener.open(req, timeout=10) as resp:
        return str(json.loads(resp.read())["token"])


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args], cwd=cwd,
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout


def seed(server: CorralProcess, tmp: Path) -> dict[str, Any]:
    """A project with files, branches, a tag, an issue with a comment, a mergeable and a conflicting MR."""
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "demo", "description": "the demo project"}, token)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Demo\n\nHello **world**.\n\n```python\nprint('hi')\n```\n")
    (work / "src").mkdir()
    (work / "src" / "app.py").write_text("def answer():\n    return 41\n")
    (work / XSS_FILE).write_text("hostile name\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first commit")
    git(work, "tag", "v1.0")
    git(work, "checkout", "-qb", "feature")
    (work / "src" / "app.py").write_text("def answer():\n    return 42\n")
    git(work, "commit", "-qam", "the right answer")
    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-qb", "clash")
    (work / "README.md").write_text("# Clash\n")
    git(work, "commit", "-qam", "rewrite the readme")
    git(work, "checkout", "-q", "main")
    (work / "README.md").write_text("# Demo on main\n\nHello **world**.\n")
    git(work, "commit", "-qam", "update the readme on main")
    remote = server.base_url.replace("http://", f"http://ada:{token}@") + "/ada/demo.git"
    git(work, "push", "-q", remote, "main", "feature", "clash", "v1.0")
    for n in (1, 2):
        (work / "NOTES.md").write_text(f"note {n}\n")
        git(work, "add", "NOTES.md")
        git(work, "commit", "-qm", f"note {n}")
    git(work, "push", "-q", remote, "main")
    base = "/api/v1/projects/ada/demo"
    api(server, "POST", f"{base}/labels", {"name": "bug"}, token)
    issue = api(server, "POST", f"{base}/issues", {"title": XSS_TITLE, "body": XSS_BODY, "labels": ["bug"]}, token)
    api(server, "POST", f"{base}/issues/{issue['number']}/comments", {"body": "a comment <script>x()</script>"},
        token)
    mr = api(server, "POST", f"{base}/merge-requests", {"source_branch": "feature", "title": "Fix the answer"}, token)
    clash = api(server, "POST", f"{base}/merge-requests", {"source_branch": "clash", "title": "Clashing change"},
                token)
    api(server, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    return {"token": token, "issue": issue["number"], "mr": mr["number"], "clash": clash["number"]}


class Shots:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    async def __call__(self, page: Any, name: str) -> None:
        path = self.root / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


async def sign_in(page: Any, server: CorralProcess, who: dict[str, str], path: str = "/ui/") -> None:
    await page.goto(server.base_url + path)
    await page.fill("input[name=name]", who["name"])
    await page.fill("input[name=password]", who["password"])
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#me-name", timeout=TIMEOUT_MS)


async def no_xss(page: Any) -> None:
    assert await page.evaluate("window.__xss === undefined"), "a payload ran"


async def test_the_ui_as_admin_and_viewer(server: CorralProcess, browser: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    data = seed(server, tmp_path)
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # an anonymous visit to a deep page goes to the sign-in form, and back there after signing in
    await page.goto(server.base_url + "/ui/ada/demo/issues")
    await page.wait_for_selector("#login-form")
    assert "next=" in page.url
    await shots(page, "01-sign-in")
    await page.fill("input[name=name]", ADMIN["name"])
    await page.fill("input[name=password]", "wrong-password")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("wrong")
    await page.fill("input[name=password]", ADMIN["password"])
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#issue-list")
    assert page.url.endswith("/ui/ada/demo/issues")
    assert await page.inner_text("#me-name") == ADMIN["name"]
    await no_xss(page)
    await shots(page, "02-issues")

    # dashboard: the activity feed in words, the projects
    await page.goto(server.base_url + "/ui/")
    feed = await page.inner_text("#activity")
    assert "ada pushed 2 commits to main in ada/demo" in feed, feed
    assert "created branch feature" in feed, feed
    assert "ada opened issue #1 in ada/demo" in feed, feed
    await expect(page.locator("#your-projects")).to_contain_text("ada/demo")
    await shots(page, "03-dashboard")

    # projects list with search
    await page.goto(server.base_url + "/ui/projects?q=demo")
    await expect(page.locator("#project-list")).to_contain_text("ada/demo")
    await page.goto(server.base_url + "/ui/projects?q=nothing-like-this")
    await page.wait_for_selector("#no-projects")
    await page.goto(server.base_url + "/ui/projects")
    await shots(page, "04-projects")

    # project home: README rendered (Markdown + highlighted code), files, the hostile file name as text
    await page.click("a[href='/ui/ada/demo']")
    await expect(page.locator("#readme h1")).to_have_text("Demo on main")
    await expect(page.locator("#file-list")).to_contain_text(XSS_FILE)
    await no_xss(page)
    await shots(page, "05-project-home")

    # file browser: folder, highlighted blob with line anchors, raw link, history of the path
    await page.click("#file-list a:has-text('src/')")
    await page.click("#file-list a:has-text('app.py')")
    assert page.url.endswith("/ui/ada/demo/src/main/src/app.py")
    await expect(page.locator("#code .hl")).to_contain_text("return 41")
    assert await page.locator("#code a[href='#L-1'], #code a[href='#L1']").count() >= 1
    raw_href = await page.get_attribute("#raw-link", "href")
    await shots(page, "06-blob")
    raw = await page.request.get(server.base_url + raw_href)
    assert raw.ok and "return 41" in await raw.text()
    await page.click("#history-link")
    await expect(page.locator("#commit-list")).to_contain_text("first commit")
    assert "update the readme" not in await page.inner_text("#commit-list")  # only the path's history
    await shots(page, "07-history")
    # the same file at another ref (a branch) and at a tag
    await page.goto(server.base_url + "/ui/ada/demo/src/feature/src/app.py")
    await expect(page.locator("#code")).to_contain_text("return 42")
    await page.goto(server.base_url + "/ui/ada/demo/src/v1.0")
    await expect(page.locator("#file-list")).to_contain_text("README.md")

    # commits and one commit with its diff
    await page.goto(server.base_url + "/ui/ada/demo/commits/feature")
    await page.click("#commit-list a:has-text('the right answer')")
    await expect(page.locator("#commit-title")).to_have_text("the right answer")
    await expect(page.locator("table.diff tr.add")).to_contain_text("return 42")
    await expect(page.locator("table.diff tr.del")).to_contain_text("return 41")
    await shots(page, "08-commit")

    # branches and tags
    await page.goto(server.base_url + "/ui/ada/demo/branches")
    await expect(page.locator("#branch-list")).to_contain_text("feature")
    await expect(page.locator("#tag-list")).to_contain_text("v1.0")
    await shots(page, "09-branches")

    # an issue: title and body as text, a comment, close
    await page.goto(server.base_url + f"/ui/ada/demo/issues/{data['issue']}")
    await expect(page.locator("#issue-title")).to_contain_text(XSS_TITLE)
    await expect(page.locator("#issue-body strong")).to_have_text("bold")
    await expect(page.locator("#issue-body")).to_contain_text("<img src=x")
    assert await page.locator("#issue-body img").count() == 0
    await expect(page.locator("#comments")).to_contain_text("a comment <script>x()</script>")
    await no_xss(page)
    await page.fill("#comment-body", "Looked at it: *fine* <img src=x onerror=\"window.__xss=4\">")
    await page.click("#comment-form button")
    await expect(page.locator("#comments em")).to_have_text("fine")
    await no_xss(page)
    await page.click("#close-issue")
    await expect(page.locator("#issue-title + p .status")).to_have_text("closed")
    await shots(page, "10-issue")
    assert api(server, "GET", f"/api/v1/projects/ada/demo/issues/{data['issue']}", token=data["token"])[
        "status"] == "closed"
    # a new issue from the form
    await page.goto(server.base_url + "/ui/ada/demo/issues/new")
    await page.fill("#title", "Opened from the UI")
    await page.fill("#body", "with a body")
    await shots(page, "11-issue-new")
    await page.click("#issue-form button")
    await expect(page.locator("#issue-title")).to_contain_text("Opened from the UI")

    # a merge request: commits, files with a unified diff, review, merge
    await page.goto(server.base_url + "/ui/ada/demo/merge-requests")
    await expect(page.locator("#mr-list")).to_contain_text("Fix the answer")
    await shots(page, "12-merge-requests")
    await page.click("#mr-list a:has-text('Fix the answer')")
    await expect(page.locator("#commits")).to_contain_text("the right answer")
    await expect(page.locator("#files table.diff tr.add")).to_contain_text("return 42")
    mr_url = page.url
    await page.check("input[name=verdict][value=approve]")  # the author may not approve: refused with why
    await page.click("#review-button")
    await expect(page.locator("#error-page")).to_contain_text("your own merge request")
    await page.goto(mr_url)
    await page.fill("#review-body", "Looks *right*")
    await page.check("input[name=verdict][value=comment]")
    await page.click("#review-button")
    await expect(page.locator("#reviews em")).to_have_text("right")
    await expect(page.locator("#approvals")).to_have_text("0 approvals")
    await shots(page, "13-merge-request")
    await page.select_option("#strategy", "squash")
    await page.click("#merge-button")
    await expect(page.locator("#mr-title + p .status")).to_have_text("merged")
    mr = api(server, "GET", f"/api/v1/projects/ada/demo/merge-requests/{data['mr']}", token=data["token"])
    assert mr["status"] == "merged"
    # a conflicting merge request: the merge is refused with the conflicting paths
    await page.goto(server.base_url + f"/ui/ada/demo/merge-requests/{data['clash']}")
    await page.click("#merge-button")
    await expect(page.locator("#merge-error")).to_contain_text("conflict")
    await expect(page.locator("#conflict-paths")).to_contain_text("README.md")
    await shots(page, "14-merge-conflict")

    # CSRF: a form post without the token is refused with a message; two tabs both work
    refused = await page.request.post(server.base_url + f"/ui/ada/demo/issues/{data['issue']}/comments",
                                      form={"body": "no token"}, headers={"Accept": "text/html"})
    assert refused.status == 403
    assert "csrf_token" in await refused.text()
    tab2 = await context.new_page()
    await tab2.goto(server.base_url + f"/ui/ada/demo/issues/{data['issue']}")
    await page.goto(server.base_url + f"/ui/ada/demo/issues/{data['issue']}")
    await tab2.fill("#comment-body", "from tab two")
    await tab2.click("#comment-form button")
    await expect(tab2.locator("#comments")).to_contain_text("from tab two")
    await page.fill("#comment-body", "from tab one")
    await page.click("#comment-form button")
    await expect(page.locator("#comments")).to_contain_text("from tab one")
    await tab2.close()

    # the audit log: human-readable actors and resources, filters
    await page.goto(server.base_url + "/ui/admin/audit")
    await expect(page.locator("#audit-table")).to_contain_text("ada pushed 2 commits to main in ada/demo")
    await page.fill("#audit-filters input[name=action]", "merge_request.merge")
    await page.click("#audit-filters button")
    await expect(page.locator("#audit-table")).to_contain_text("ada merged merge request !1 in ada/demo")
    assert "pushed" not in await page.inner_text("#audit-table")
    await shots(page, "15-audit")

    # search, inbox, 404
    await page.fill("#q", "Opened from")
    await page.press("#q", "Enter")
    await expect(page.locator("main")).to_contain_text("Opened from the UI")
    await shots(page, "16-search")
    response = await page.goto(server.base_url + "/ui/no/such/page/here")
    assert response is not None and response.status == 404
    await expect(page.locator("#error-page h1")).to_contain_text("404")
    await shots(page, "16b-not-found")
    response = await page.goto(server.base_url + "/ui/ada/demo/issues/999")
    assert response is not None and response.status == 404

    # a phone-sized window: nothing runs off the screen
    await page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (("/ui/", "17-dashboard-390"), ("/ui/ada/demo/merge-requests/1", "18-mr-390")):
        await page.goto(server.base_url + path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide at 390px"
        await shots(page, name)
    # keyboard: the skip link is the first stop and leads to the content
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"

    # sign out
    await page.click("#logout")
    await page.wait_for_selector("#login-form")
    assert dialogs == []
    await context.close()

    # the viewer: reads everything, may not write; the forms are absent and a post is refused with a message
    viewer = await browser.new_context(viewport={"width": 1280, "height": 900})
    viewer.set_default_timeout(TIMEOUT_MS)
    vpage = await viewer.new_page()
    await sign_in(vpage, server, VIEWER, f"/ui/?next=/ui/ada/demo/issues/{data['issue']}")
    await expect(vpage.locator("#issue-title")).to_contain_text(XSS_TITLE)
    assert await vpage.locator("#comment-form").count() == 0
    await expect(vpage.locator(".denied")).to_contain_text("project:write")
    await shots(vpage, "19-viewer-issue")
    await vpage.goto(server.base_url + f"/ui/ada/demo/merge-requests/{data['clash']}")
    assert await vpage.locator("#merge-form").count() == 0
    await expect(vpage.locator(".denied").first).to_contain_text("project:write")
    csrf = next(c["value"] for c in await viewer.cookies() if c["name"] == "corral_csrf")
    refused = await vpage.request.post(server.base_url + f"/ui/ada/demo/merge-requests/{data['clash']}/merge",
                                       form={"csrf_token": csrf, "strategy": "merge"},
                                       headers={"Accept": "text/html"})
    assert refused.status == 403
    assert "project:write" in await refused.text()
    await vpage.goto(server.base_url + "/ui/ada/demo/issues/new")
    await expect(vpage.locator("#error-page")).to_contain_text("project:write")
    await shots(vpage, "20-viewer-refused")
    response = await vpage.goto(server.base_url + "/ui/admin/audit")  # admin:audit: refused with the reason
    assert response is not None and response.status == 403
    await expect(vpage.locator("#error-page")).to_contain_text("admin:audit")
    await viewer.close()
    assert all(p.stat().st_size > 0 for p in shots.taken)


async def test_login_form_refuses_cross_site_posts(server: CorralProcess) -> None:
    req = urllib.request.Request(server.base_url + "/ui/login", method="POST",
                                 data=f"name={ADMIN['name']}&password={ADMIN['password']}".encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Origin": "https://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 403
    assert "corral_session" not in (info.value.headers.get("Set-Cookie") or "")
