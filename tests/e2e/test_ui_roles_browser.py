"""Every web UI page walked as an admin, a developer and a viewer (issue #18 "Done means") in a real browser
(Debian's Chromium driven by Playwright) against one real `corral serve` seeded through the API: a repository
with commits and a Markdown README, an issue, a merge request, a pipeline run, an agent session of the stand-in
provider, a deployment environment, logs and spans through OTLP, hostile text in each.

One table (``PAGES``, one line per page) drives the walk; ``test_every_registered_page_is_walked`` fails when a
GET page registered on the UI RouteTable is missing from it, so a page added later must join. For each page and
user: the status (200, or the 403 page naming the permission), the page's marker element, no console or page
error, no payload run, the main action reachable with Tab and visibly focused (or absent with a "needs X"
message for a user who may not act), no horizontal overflow at 390 px and no one-word label broken letter by
letter there, a full-page screenshot in ``test-artifacts/ui/<user>/<page>.png`` (and, for the admin, the page in
dark mode at 390 px, its background dark, in ``test-artifacts/ui/admin-dark/``).
Then: a developer writes where a viewer is refused, forms work in two tabs and refuse a missing or wrong CSRF
token with a message page, and an unknown page is a 404 page. One server, one browser and one page per user
for the whole module. Every wait is bounded."""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES, _admin, _new_db_name
from tests.e2e.corral_process import CorralProcess
from tests.e2e.test_ui_browser import ADMIN, ARGS, CHROMIUM, TIMEOUT_MS, VIEWER, admin_token, api, git, sign_in
from tests.e2e.test_ui_ops_browser import DEPLOYMENT_YAML, otlp, until

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
STANDIN = Path(__file__).with_name("claude_standin.py")
DEVELOPER = {"name": "dev", "password": "developer-password-123", "email": "dev@example.com"}
USERS = {"admin": ADMIN, "developer": DEVELOPER, "viewer": VIEWER}
RANK = {"viewer": 0, "developer": 1, "admin": 2}  # "who may" below names the least of these that may
XSS = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
LONG = "x" * 40 + "-a-long-unbroken-word-" + "y" * 120  # long lines and words: nothing may run off a phone
XSS_FILE = "<img src=x onerror=window.__xss=3>.md"
PIPELINE = f"""\
steps:
  build:
    image: busybox
    commands:
      - echo building
      - echo '{XSS}'
      - echo '{"z" * 300}'
"""
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}
MAX_TABS = 120
DARK_RUN = "admin"  # whose walk also looks at every page with the system in dark mode (test-artifacts/ui/admin-dark)


@dataclass(frozen=True)
class Page:
    """One page of the walk. ``url`` and ``shows`` are filled from the seeded data ({issue}, {mr}, {sha}, ...).
    marker: the page's main element, holding the seeded text ``shows``;
    see: the least user who may load it (the others get a 403 page naming ``needs``);
    action: the page's main action, which the keyboard must reach (Tab) with a visible focus;
    act: the least user who may act (the others see the action absent or disabled and a .denied note naming
    ``needs``)."""

    route: str
    key: str
    url: str
    marker: str
    shows: str
    see: str = "viewer"
    action: str | None = None
    act: str = "viewer"
    needs: str = ""


# A new page joins with one line: Page(registered route, screenshot name, URL (seeded data in {}), marker selector,
# seeded text the marker shows, see=least user who may load it, action=main action's selector, act=least user who
# may use it, needs=the permission named to the others). Seed what it shows in ``data`` below.
P = "/ui/{owner}/{name}"
PAGES: tuple[Page, ...] = (
    Page("/ui/", "dashboard", "/ui/", "#your-projects", "ada/demo", action="#your-projects a"),
    Page("/ui/projects", "projects", "/ui/projects", "#project-list", "ada/demo", action="#project-q"),
    Page("/ui/search", "search", "/ui/search?q=Bug", "main", "ada/demo#1 Bug <script>", action="#search-q"),
    Page("/ui/notifications", "notifications", "/ui/notifications", "main h1", "Notifications"),
    Page("/ui/account", "account", "/ui/account", "#password-form", "password", action="#token-create"),
    Page(P, "project-home", "/ui/ada/demo", "#readme h1", "Demo", action="#file-list a"),
    Page(f"{P}/src/{{ref}}", "src-root", "/ui/ada/demo/src/main", "#file-list", "README.md", action="#file-list a"),
    Page(f"{P}/src/{{ref}}/{{path:.*}}", "src-blob", "/ui/ada/demo/src/main/src/app.py", "#code", "return 41",
         action="#raw-link"),
    Page(f"{P}/commits/{{ref:.+}}", "commits", "/ui/ada/demo/commits/main", "#commit-list", "first commit <script>",
         action="#commit-list a"),
    Page(f"{P}/commit/{{sha}}", "commit", "/ui/ada/demo/commit/{sha}", "#commit-title", "first commit"),
    Page(f"{P}/branches", "branches", "/ui/ada/demo/branches", "#branch-list", "feature", action="#branch-list a"),
    Page(f"{P}/issues", "issues", "/ui/ada/demo/issues", "#issue-list", "Bug <script>", action="#new-issue",
         act="developer", needs="project:write"),
    Page(f"{P}/issues/new", "issue-new", "/ui/ada/demo/issues/new", "#issue-form", "Title", see="developer",
         action="#issue-form button", act="developer", needs="project:write"),
    Page(f"{P}/issues/{{number}}", "issue", "/ui/ada/demo/issues/{issue}", "#issue-title", "Bug <script>",
         action="#comment-form button", act="developer", needs="project:write"),
    Page(f"{P}/merge-requests", "merge-requests", "/ui/ada/demo/merge-requests", "#mr-list", "Fix <script>",
         action="#new-mr", act="developer", needs="project:write"),
    Page(f"{P}/merge-requests/new", "merge-request-new", "/ui/ada/demo/merge-requests/new", "#mr-form", "second",
         see="developer", action="#mr-form button", act="developer", needs="project:write"),
    Page(f"{P}/merge-requests/{{number}}", "merge-request", "/ui/ada/demo/merge-requests/{mr}", "#mr-title",
         "Fix <script>", action="#merge-button", act="developer", needs="project:write"),
    Page(f"{P}/pipelines", "pipelines", "/ui/ada/demo/pipelines", "#pipeline-list", "#{pipeline}",
         action="#pipeline-list a"),
    Page(f"{P}/pipelines/{{number}}", "pipeline", "/ui/ada/demo/pipelines/{pipeline}", "#pipeline-title",
         "#{pipeline}", action="#restart-button", act="developer", needs="pipeline:run"),
    Page(f"{P}/deployments", "deployments", "/ui/ada/demo/deployments", "#environment-list", "staging",
         action="#environment-list a"),
    Page(f"{P}/deployments/{{environment}}", "deployment", "/ui/ada/demo/deployments/staging", "#image-ref",
         "registry.example/web:2", action="#rollback-button", act="admin", needs="deploy:promote"),
    Page("/ui/agent-sessions", "agent-sessions", "/ui/agent-sessions", "#agent-session-list", "hello <script>",
         action="#agent-session-list a"),
    Page("/ui/agent-sessions/{id}", "agent-session", "/ui/agent-sessions/{session}", "#session-prompt",
         "hello <script>", action="#message-button", act="developer", needs="agent:run"),
    Page(f"{P}/agent-sessions/new", "agent-session-new", "/ui/ada/demo/agent-sessions/new", "#new-session-form",
         "project:read", see="developer", action="#start-button", act="developer", needs="agent:run"),
    Page("/ui/observe/logs", "logs", "/ui/observe/logs?project=ada/demo", "#log-table", "query failed <script>",
         action="#log-filters button"),
    Page("/ui/observe/traces/{trace_id}", "trace", "/ui/observe/traces/{trace}?project=ada/demo", "#waterfall",
         "db-query", action="#trace-logs"),
    Page("/ui/admin/users", "admin-users", "/ui/admin/users", "#user-list", "dev@example.com", see="admin",
         action="#create-user-button", act="admin", needs="admin:users"),
    Page("/ui/admin/roles", "admin-roles", "/ui/admin/roles", "#role-list", "developer",
         action="#create-role-button", act="admin", needs="admin:roles"),
    Page("/ui/admin/role-bindings", "admin-role-bindings", "/ui/admin/role-bindings", "#binding-list", "ada/demo",
         see="admin", action="#bind-button", act="admin", needs="admin:users"),
    Page("/ui/admin/delegations", "admin-delegations", "/ui/admin/delegations", "#delegation-list", "project:read",
         see="admin", needs="admin:users"),
    Page("/ui/admin/explain", "admin-explain", "/ui/admin/explain?user=dev&permission=project:write&project=ada/demo",
         "#explanation", "dev can use project:write in ada/demo", see="admin", action="#explain-form button",
         act="admin", needs="admin:users"),
    Page(f"{P}/tags", "tags", "/ui/ada/demo/tags", "#tag-list", "v1.0", action="#tag-form button", act="developer",
         needs="project:write"),
    Page(f"{P}/compare", "compare", "/ui/ada/demo/compare", "#compare-form", "Compare", action="#compare-form button"),
    Page(f"{P}/compare/{{spec:.+}}", "compare-refs", "/ui/ada/demo/compare/main...feature", "#compare-commits",
         "answer 42", action="#open-mr", act="developer", needs="project:write"),
    Page(f"{P}/docs", "docs", "/ui/ada/demo/docs", "#doc-pages", "guide", action="#doc-pages a"),
    Page(f"{P}/docs/{{path:.*}}", "doc", "/ui/ada/demo/docs/guide.md", "#doc h1", "The guide"),
    Page(f"{P}/releases", "releases", "/ui/ada/demo/releases", "#release-list", "Version one <script>",
         action="#new-release", act="developer", needs="project:write"),
    Page(f"{P}/releases/new", "release-new", "/ui/ada/demo/releases/new", "#release-form", "Tag", see="developer",
         action="#release-form button[type=submit]", act="developer", needs="project:write"),
    Page(f"{P}/releases/{{release_id}}", "release", "/ui/ada/demo/releases/{release}", "#release-title",
         "Version one <script>", action="#edit-release summary", act="developer", needs="project:write"),
    Page(f"{P}/settings", "settings", "/ui/ada/demo/settings", "#general-form", "Visibility", see="admin",
         action="#save-general", act="admin", needs="project:admin"),
    Page(f"{P}/settings/branch-protections", "settings-protections", "/ui/ada/demo/settings/branch-protections",
         "#protection-form", "", see="admin", action="#protect-button", act="admin", needs="project:admin"),
    Page(f"{P}/settings/webhooks", "settings-webhooks", "/ui/ada/demo/settings/webhooks", "#hook-list",
         "127.0.0.1", see="admin", action="#add-hook", act="admin", needs="project:admin"),
    Page(f"{P}/settings/webhooks/{{hook_id}}", "settings-webhook", "/ui/ada/demo/settings/webhooks/{hook}",
         "#hook-url-title", "127.0.0.1", see="admin", action="#edit-hook summary", act="admin", needs="project:admin"),
    Page(f"{P}/settings/secrets", "settings-secrets", "/ui/ada/demo/settings/secrets", "#secret-form", "", see="admin",
         action="#secret-form button[type=submit]", act="admin", needs="project:admin"),
    Page(f"{P}/settings/members", "settings-members", "/ui/ada/demo/settings/members", "#member-list", "dev",
         see="admin", needs="project:admin"),
    Page("/ui/observe/metrics", "metrics", "/ui/observe/metrics?project=ada/demo&name=queue_latency", "#metric-chart",
         "", action="#metric-filters button"),
    Page("/ui/observe/alerts", "alerts", "/ui/observe/alerts?project=ada/demo", "#rule-table", "latency <script>",
         action="main details.card > summary", act="admin", needs="alert:manage"),
    Page("/ui/observe/alerts/{rule_id}", "alert", "/ui/observe/alerts/{rule}", "#rule-title", "latency <script>",
         action="#delete-rule", act="admin", needs="alert:manage"),
    Page("/ui/observe/sessions/{session_id}", "session-timeline", "/ui/observe/sessions/{session}?project=ada/demo",
         "#timeline-summary", "", action="#agent-session-link"),
    Page("/ui/admin/system", "admin-system", "/ui/admin/system", "#system-facts", "", see="admin",
         needs="admin:settings"),
    Page("/ui/admin/audit", "audit", "/ui/admin/audit", "#audit-table", "ada created the user dev", see="admin",
         action="#audit-filters button", act="admin", needs="admin:audit"),
)
# registered GET routes under /ui/ that are not pages to walk, and why
NOT_PAGES = {
    "/ui/static/{file:[A-Za-z0-9_.-]+}": "the stylesheets and scripts",
    "/ui/{tail:.*}": "the 404 catch-all: test_an_unknown_page_is_a_404_page",
    "/ui/{owner}/{name}/raw/{ref}/{path:.+}": "a file's bytes as text/plain, not an HTML page (test_ui_code_browser)",
}


def may(user: str, least: str) -> bool:
    return RANK[user] >= RANK[least]


def test_every_registered_page_is_walked() -> None:
    """A GET page registered on the UI RouteTable but missing from PAGES fails here: add its line."""
    import corral.entrypoints.web.routes  # noqa: F401 (registers every UI module's pages)
    from corral.entrypoints.web.ui.table import routes

    registered = {s.path for s in routes.specs if s.method == "GET" and s.path.startswith("/ui/")}
    walked = {p.route for p in PAGES}
    missing = registered - walked - set(NOT_PAGES)
    assert not missing, f"UI pages missing from the walk's PAGES table: {sorted(missing)}"
    stale = walked - registered
    assert not stale, f"PAGES lines for routes that are not registered: {sorted(stale)}"
    assert len({p.key for p in PAGES}) == len(PAGES), "page keys name the screenshots: keep them unique"


# ---- one server, one browser, one page per user ---------------------------------------------------------------
@pytest.fixture(scope="module")
async def module_db(pg_server: Any, _migrated_template: str) -> AsyncIterator[str]:
    name = _new_db_name()
    await _admin(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{_migrated_template}" STRATEGY FILE_COPY')
    yield pg_server.dsn(name)
    await _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(module_db: str, valkey_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralProcess]:
    valkey_server.flushall()
    root = tmp_path_factory.mktemp("uiroles")
    claude = root / "bin" / "claude"
    claude.parent.mkdir(parents=True)
    claude.write_text(f"#!{sys.executable}\n{STANDIN.read_text()}")
    claude.chmod(0o755)
    data = root / "data"
    data.mkdir()
    proc = CorralProcess.start(data, {
        "CORRAL_DATABASE_URL": module_db, "CORRAL_VALKEY_URL": valkey_server.url(0),
        "CORRAL_DEPLOY_CLUSTER": "none", "CORRAL_AGENT_CLAUDE_COMMAND": str(claude),
        "CORRAL_OBSERVE_SELF": "false", "CORRAL_OTLP_DECODE_PROCESSES": "0",
        "CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN["name"], "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": ADMIN["email"],
    })
    yield proc
    code = proc.stop()
    assert code == 0, proc.log_text()[-3000:]


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Iterator[Path]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    yield ARTIFACTS
    shots = sorted(ARTIFACTS.rglob("*.png"))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and shots:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nUI screenshots ({len(shots)}): {ARTIFACTS}/<user>/<page>.png")


@pytest.fixture(scope="module")
def data(server: CorralProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real data through the API and git: every page of the walk shows some of it."""
    tmp = tmp_path_factory.mktemp("seed")
    token = admin_token(server)
    remote = server.base_url.replace("http://", f"http://ada:{token}@")
    base = "/api/v1/projects/ada/demo"
    api(server, "POST", "/api/v1/projects", {"name": "demo", "description": f"demo {XSS}"}, token)
    api(server, "POST", "/api/v1/projects", {"name": "ops"}, token)
    ops = tmp / "ops"
    (ops / "apps" / "web").mkdir(parents=True)
    git(ops, "init", "-q", "-b", "main")
    (ops / "apps" / "web" / "deployment.yaml").write_text(DEPLOYMENT_YAML)
    git(ops, "add", "-A")
    git(ops, "commit", "-qm", "ops")
    git(ops, "push", "-q", f"{remote}/ada/ops.git", "main")
    work = tmp / "work"
    (work / "src").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text(f"# Demo\n\nHello **world**.\n\n```python\nprint('hi')  # {LONG}\n```\n\n"
                                    f"| a | b | c |\n|---|---|---|\n| {LONG} | {LONG} | x |\n\n{LONG}\n")
    (work / "src" / "app.py").write_text(f"def answer():\n    return 41  # {LONG}\n")
    (work / XSS_FILE).write_text("hostile name\n")
    (work / ".woodpecker.yaml").write_text(PIPELINE)
    (work / "docs").mkdir()
    (work / "docs" / "guide.md").write_text(f"# The guide\n\nRead *this* {XSS}\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", f"first commit {XSS}")
    for branch, text in (("feature", "42"), ("second", "43")):
        git(work, "checkout", "-qb", branch)
        (work / "src" / "app.py").write_text(f"def answer():\n    return {text}  # {LONG}\n")
        git(work, "commit", "-qam", f"answer {text}")
        git(work, "checkout", "-q", "main")
    git(work, "tag", "v1.0")
    git(work, "push", "-q", f"{remote}/ada/demo.git", "main", "feature", "second", "v1.0")
    sha = git(work, "rev-parse", "main").strip()
    session = api(server, "POST", f"{base}/agent-sessions", {
        "prompt": f"hello {XSS}", "provider": "claude-code", "permissions": ["project:read"], "max_turns": 20,
        "max_cost_usd": 1.0, "timeout_seconds": 120, "branch": None, "open_merge_request": False}, token)["id"]
    api(server, "POST", f"{base}/labels", {"name": "bug"}, token)
    issue = api(server, "POST", f"{base}/issues", {"title": f"Bug {XSS} {LONG}", "body": f"**bold** {XSS} {LONG}",
                                                   "labels": ["bug"]}, token)["number"]
    api(server, "POST", f"{base}/issues/{issue}/comments", {"body": f"a comment {XSS}"}, token)
    mr = api(server, "POST", f"{base}/merge-requests", {"source_branch": "feature", "title": f"Fix {XSS}"},
             token)["number"]
    release = api(server, "POST", f"{base}/releases", {"tag": "v1.0", "title": f"Version one {XSS}",
                                                       "notes": f"**first** {XSS}"}, token)["id"]
    hook = api(server, "POST", f"{base}/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["issue"]},
               token)["id"]
    rule = api(server, "POST", "/api/v1/alert-rules", {"name": f"latency {XSS}", "query": "metric:queue_latency avg 5m",
                                                       "condition": "gt", "threshold": 1000, "project": "ada/demo"},
               token)["id"]
    api(server, "POST", "/api/v1/ops-repos", {"name": "ops", "project": "ada/ops", "branch": "main", "path": ""},
        token)
    for image in ("registry.example/web:1", "registry.example/web:2"):
        api(server, "PUT", f"{base}/deployments/staging", {"ops_repo": "ops", "app_path": "apps/web",
                                                           "image_ref": image, "namespace": "web"}, token)
    trace = uuid.uuid4().hex
    now = time.time_ns()
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "ui-roles"}},
                               {"key": "corral.project", "value": {"stringValue": "ada/demo"}}]}
    otlp(server, "/v1/traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [
        {"traceId": trace, "spanId": "0102030405060708", "name": f"handle {XSS}", "kind": 2,
         "startTimeUnixNano": str(now - 50_000_000), "endTimeUnixNano": str(now)},
        {"traceId": trace, "spanId": "1112131415161718", "parentSpanId": "0102030405060708", "name": "db-query",
         "kind": 3, "startTimeUnixNano": str(now - 40_000_000), "endTimeUnixNano": str(now - 10_000_000),
         "status": {"code": 2}, "attributes": [{"key": "db.statement", "value": {"stringValue": XSS}}]},
    ]}]}]}, token)
    otlp(server, "/v1/logs", {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(now), "severityNumber": 17, "severityText": "ERROR", "traceId": trace,
         "spanId": "1112131415161718", "body": {"stringValue": f"query failed {XSS} {LONG}"}},
    ]}]}]}, token)
    points = [{"timeUnixNano": str(now - (4 - i) * 60_000_000_000), "asDouble": float(10 + i),
               "attributes": [{"key": "host", "value": {"stringValue": XSS}}]} for i in range(5)]
    otlp(server, "/v1/metrics", {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
        {"name": "queue_latency", "unit": "ms", "gauge": {"dataPoints": points}}]}]}]}, token)
    for user in (DEVELOPER, VIEWER):
        api(server, "POST", "/api/v1/users", {k: user[k] for k in ("name", "email", "password")}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": DEVELOPER["name"], "role": "developer",
                                                  "project": "ada/demo"}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    pipeline = until("a pipeline to finish", lambda: next(
        (p for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]
         if p["status"] in ("success", "failure", "error")), None))
    until("the logs to be searchable", lambda: api(server, "GET", f"/api/v1/observe/logs?trace_id={trace}",
                                                   token=token)["items"], timeout=30)
    until("the metric to be queryable", lambda: api(
        server, "GET", "/api/v1/observe/metrics?name=queue_latency&since=1h&step=60", token=token)["series"])
    until("the agent session to end", lambda: api(server, "GET", f"/api/v1/agent-sessions/{session}",
                                                  token=token)["status"] in ("completed", "failed", "stopped"))
    return {"token": token, "issue": issue, "mr": mr, "sha": sha, "pipeline": pipeline["number"],
            "session": session, "trace": trace, "release": release, "hook": hook, "rule": rule}


@dataclass
class User:
    name: str
    context: Any
    page: Any
    errors: list[str]


@pytest.fixture(scope="module")
async def users(server: CorralProcess, browser: Any, data: dict[str, Any]) -> AsyncIterator[dict[str, User]]:
    signed: dict[str, User] = {}
    for name, who in USERS.items():
        context = await browser.new_context(viewport=WIDE)
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(f"console {m.type}: {m.text} @ {m.location}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(f"page error: {e}"))
        page.on("dialog", lambda d: d.dismiss())
        await sign_in(page, server, who)
        signed[name] = User(name, context, page, errors)
    yield signed
    for u in signed.values():
        await u.context.close()


# ---- the walk -------------------------------------------------------------------------------------------------
def url_of(p: Page, data: dict[str, Any]) -> str:
    return p.url.format(**data)


def real_errors(errors: list[str], status: int) -> list[str]:
    """Console errors, less the browser's own note of the document's expected error status (403/404)."""
    expected = f"the server responded with a status of {status}"
    return [e for e in errors if status == 200 or expected not in e]


TAB_STOPS = """sel => {
    const groups = new Set();
    const stops = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')]
        .filter(e => !e.disabled && e.tabIndex >= 0 && e.type !== 'hidden'
                     && e.checkVisibility({visibilityProperty: true}))
        .filter(e => e.type !== 'radio' || (!groups.has(e.name) && groups.add(e.name)));
    return stops.findIndex(e => e.matches(sel)) + 1;
}"""
FOCUS_STATE = """sel => {
    const el = document.activeElement;
    if (!el || el === document.body) return 'body';
    if (!el.matches(sel)) return 'other';
    const s = getComputedStyle(el);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none' ? 'ok' : 'invisible';
}"""


LUMINANCE = """() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""
# table headers, statuses and tags of one word that the layout broke over several lines (letter by letter); text
# only for screen readers (.sr) is not seen
BROKEN_WORDS = """() => [...document.querySelectorAll('th, .status, .tag')].filter(e => {
    const text = e.textContent.trim();
    if (!text || /\\s/.test(text) || !e.checkVisibility() || e.querySelector('.sr')) return false;  // .sr: unseen
    const range = document.createRange();
    range.selectNodeContents(e);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
}).map(e => e.textContent.trim()).slice(0, 6)"""


async def tab_to(page: Any, selector: str) -> str | None:
    """Press Tab from the top of the page until the focus is on ``selector``; None when it is, else why not.
    The first stop must be the skip link, and the focus must be visible (an outline) once it gets there. To save
    round trips it first presses as far as the target's place in the Tab order computed in the page, less one,
    then steps and looks; when that guess is wrong it loads the page again and walks from the top one step at a
    time. Call it right after a load."""
    place = await page.evaluate(TAB_STOPS, selector)
    await page.keyboard.press("Tab")
    if not await page.evaluate("document.activeElement.matches('a.skip')"):
        return "the first Tab stop is not the skip link"
    for again, (skip, steps) in enumerate(((max(place - 2, 0), 12), (0, MAX_TABS))):
        if again:
            await page.reload()  # the Tab order starts from the top again
        for _ in range(skip):
            await page.keyboard.press("Tab")
        for _ in range(steps):
            state = await page.evaluate(FOCUS_STATE, selector)
            if state == "ok":
                return None
            if state == "invisible":
                return f"the focus on {selector} is not visible"
            await page.keyboard.press("Tab")
    return f"{MAX_TABS} Tabs did not reach {selector} (its place in the Tab order looked like {place})"


async def check_page(u: User, p: Page, server: CorralProcess, data: dict[str, Any], shots: Path) -> list[str]:
    from playwright.async_api import expect

    page = u.page
    url = url_of(p, data)
    u.errors.clear()
    await page.set_viewport_size(WIDE)
    response = await page.goto(server.base_url + url)
    problems: list[str] = []
    seen = may(u.name, p.see)
    status = 200 if seen else 403
    if response is None or response.status != status:
        problems.append(f"status {response.status if response else None}, expected {status}")
    if seen:
        shows = p.shows.format(**data)
        marker = page.locator(p.marker).first
        if await marker.count() == 0:
            problems.append(f"marker {p.marker} missing")
        elif shows not in (await marker.text_content() or ""):
            problems.append(f"{p.marker} does not show {shows!r}")
        if p.action:
            if may(u.name, p.act):
                why = await tab_to(page, p.action)
                if why:
                    problems.append(why)
            else:
                usable = await page.locator(f"{p.action}:not([disabled])").count()
                if usable:
                    problems.append(f"{p.action} offered to a {u.name}")
                denied = page.locator(".denied", has_text=p.needs)
                if await denied.count() == 0:
                    problems.append(f"no .denied note naming {p.needs}")
    else:
        try:
            await expect(page.locator("#error-page")).to_contain_text(p.needs, timeout=2000)
        except AssertionError:
            problems.append(f"no 403 page naming {p.needs}")
    if not await page.evaluate("window.__xss === undefined"):
        problems.append("a payload ran")
    await page.screenshot(path=str(shots / u.name / f"{p.key}.png"), full_page=True)
    await page.set_viewport_size(NARROW)
    width = await page.evaluate("document.documentElement.scrollWidth")
    if width > NARROW["width"]:
        wide = await page.evaluate("""() => [...document.querySelectorAll('main *, header *')]
            .filter(e => e.getBoundingClientRect().right > 391).slice(0, 3)
            .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className)""")
        problems.append(f"{width}px wide at 390px ({wide})")
    broken = await page.evaluate(BROKEN_WORDS)
    if broken:
        problems.append(f"one-word labels broken over lines at 390px: {broken}")
    if u.name == DARK_RUN:  # the same page with the system in dark mode, on the phone-sized window
        light, _ = await page.evaluate(LUMINANCE), await page.emulate_media(color_scheme="dark")
        dark = await page.evaluate(LUMINANCE)
        if not (light > 180 and dark < 60):
            problems.append(f"the background does not follow the system: luminance {light:.0f} light, {dark:.0f} dark")
        await page.screenshot(path=str(shots / f"{u.name}-dark" / f"{p.key}.png"), full_page=True)
        await page.emulate_media(color_scheme="light")
    problems += real_errors(u.errors, status)
    return [f"{p.key} as {u.name} ({url}): {what}" for what in problems]


@pytest.mark.parametrize("user", list(USERS))
async def test_every_page_as(user: str, users: dict[str, User], server: CorralProcess, data: dict[str, Any],
                             artifacts: Path) -> None:
    (artifacts / user).mkdir(exist_ok=True)
    (artifacts / f"{DARK_RUN}-dark").mkdir(exist_ok=True)
    problems: list[str] = []
    for p in PAGES:
        problems += await check_page(users[user], p, server, data, artifacts)
    assert not problems, "\n".join(problems)
    assert len(list((artifacts / user).glob("*.png"))) == len(PAGES)
    if user == DARK_RUN:
        assert len(list((artifacts / f"{user}-dark").glob("*.png"))) == len(PAGES)


async def test_a_developer_writes_where_a_viewer_is_refused(users: dict[str, User], server: CorralProcess,
                                                            data: dict[str, Any]) -> None:
    from playwright.async_api import expect

    dev, viewer = users["developer"].page, users["viewer"].page
    issue_url = server.base_url + f"/ui/ada/demo/issues/{data['issue']}"
    # a comment (its payload as text) and a merge request opened from the form
    await dev.goto(issue_url)
    await dev.fill("#comment-body", f"developer says *hi* {XSS}")
    await dev.click("#comment-form button")
    await expect(dev.locator("#comments em").last).to_have_text("hi")
    await expect(dev.locator("#comments")).to_contain_text(f"developer says hi {XSS}")
    assert await dev.evaluate("window.__xss === undefined")
    await dev.goto(server.base_url + "/ui/ada/demo/merge-requests/new")
    await dev.select_option("#source_branch", "second")
    await dev.fill("#title", "Opened by the developer")
    await dev.click("#mr-form button")
    await expect(dev.locator("#mr-title")).to_contain_text("Opened by the developer")
    number = int(dev.url.rstrip("/").rsplit("/", 1)[-1])
    mr = api(server, "GET", f"/api/v1/projects/ada/demo/merge-requests/{number}", token=data["token"])
    assert mr["source_branch"] == "second" and mr["title"] == "Opened by the developer"
    # the viewer: no form, and the same posts (with a good CSRF token) refused with a page naming the permission
    await viewer.goto(issue_url)
    assert await viewer.locator("#comment-form").count() == 0
    csrf = next(c["value"] for c in await users["viewer"].context.cookies() if c["name"] == "corral_csrf")
    for path, form in ((f"/ui/ada/demo/issues/{data['issue']}/comments", {"body": "viewer was here"}),
                       ("/ui/ada/demo/merge-requests", {"source_branch": "second", "title": "viewer MR"})):
        refused = await viewer.request.post(server.base_url + path, form={"csrf_token": csrf, **form},
                                            headers={"Accept": "text/html"}, max_redirects=0)
        assert refused.status == 403, (path, refused.status)
        text = await refused.text()
        assert 'id="error-page"' in text and "project:write" in text, text[-2000:]
    comments = api(server, "GET", f"/api/v1/projects/ada/demo/issues/{data['issue']}/comments", token=data["token"])
    assert "viewer was here" not in str(comments)
    assert "viewer MR" not in str(api(server, "GET", "/api/v1/projects/ada/demo/merge-requests?status=all",
                                      token=data["token"]))


async def test_forms_work_in_two_tabs_and_refuse_a_bad_csrf_token(users: dict[str, User], server: CorralProcess,
                                                                  data: dict[str, Any], artifacts: Path) -> None:
    from playwright.async_api import expect

    dev = users["developer"]
    issue_url = server.base_url + f"/ui/ada/demo/issues/{data['issue']}"
    one, two = dev.page, await dev.context.new_page()
    await one.goto(issue_url)
    await two.goto(issue_url)  # both tabs hold the form before either posts
    await two.fill("#comment-body", "from tab two")
    await two.click("#comment-form button")
    await expect(two.locator("#comments")).to_contain_text("from tab two")
    await one.fill("#comment-body", "from tab one")
    await one.click("#comment-form button")
    await expect(one.locator("#comments")).to_contain_text("from tab one")
    await expect(one.locator("#comments")).to_contain_text("from tab two")
    # a wrong token and no token: refused with a page that says why, nothing written
    for name, change in (("wrong", "f => f.querySelector('input[name=csrf_token]').value = 'not-the-token'"),
                         ("missing", "f => f.querySelector('input[name=csrf_token]').remove()")):
        await two.goto(issue_url)
        await two.fill("#comment-body", f"csrf {name}")
        await two.eval_on_selector("#comment-form", change)
        async with two.expect_navigation() as nav:
            await two.click("#comment-form button")
        response = await nav.value
        assert response is not None and response.status == 403, name
        await expect(two.locator("#error-page")).to_contain_text("csrf_token")
        await two.screenshot(path=str(artifacts / "developer" / f"csrf-{name}.png"), full_page=True)
    await two.close()
    comments = str(api(server, "GET", f"/api/v1/projects/ada/demo/issues/{data['issue']}/comments",
                       token=data["token"]))
    assert "from tab one" in comments and "from tab two" in comments
    assert "csrf wrong" not in comments and "csrf missing" not in comments


async def test_the_header_and_the_dashboard_follow_each_users_rights(users: dict[str, User],
                                                                    server: CorralProcess) -> None:
    from playwright.async_api import expect

    for name, admin_links in (("admin", True), ("developer", False), ("viewer", False)):
        page = users[name].page
        await page.goto(server.base_url + "/ui/")
        nav = page.locator("nav.nav")
        assert (await nav.locator("a[href='/ui/admin/audit']").count() == 1) is admin_links, name
        assert (await nav.get_by_role("link", name="Admin", exact=True).count() == 1) is admin_links, name
    # without admin:audit, the dashboard still tells what happened in the projects one reads (not their settings)
    for name in ("developer", "viewer"):
        page = users[name].page
        await page.goto(server.base_url + "/ui/")
        feed = page.locator("#activity .feed")
        await expect(feed).to_contain_text("in ada/demo")
        text = (await feed.inner_text()).lower()
        assert "webhook" not in text and "secret" not in text and "role" not in text, (name, text)


@pytest.mark.parametrize("path", ["/ui/no/such/page/here", "/ui/ada/demo/issues/999", "/ui/ada/no-such-project"])
async def test_an_unknown_page_is_a_404_page(users: dict[str, User], server: CorralProcess, path: str) -> None:
    from playwright.async_api import expect

    for name in ("admin", "viewer"):
        page = users[name].page
        response = await page.goto(server.base_url + path)
        assert response is not None and response.status == 404, (name, path, response and response.status)
        await expect(page.locator("#error-page h1")).to_contain_text("404")
        await expect(page.locator("#error-page .error")).not_to_be_empty()


async def test_the_walks_checks_catch_what_they_look_for(browser: Any) -> None:
    """The walk's own checks against pages made to fail them: a focus without an outline, a word broken letter
    by letter, the guessed Tab place (a radio group is one stop), no skip link first, a page wider than 390 px."""
    context = await browser.new_context(viewport=NARROW)
    page = await context.new_page()
    html = """<style>a:focus-visible { outline: 2px solid red; }</style><a class="skip" href="#m">skip</a>
        <main id="m"><input type="radio" name="r"><input type="radio" name="r"><input type="radio" name="r">
        <button id="plain" style="outline: none">go</button><a href="#x" id="fine">x</a>
        <table style="width: 60px"><tr><th style="overflow-wrap: anywhere">Environment</th></tr></table></main>"""
    await page.set_content(html)
    assert await page.evaluate(TAB_STOPS, "#plain") == 3
    assert await tab_to(page, "#plain") == "the focus on #plain is not visible"
    await page.set_content(html)
    assert await tab_to(page, "#fine") is None
    assert await page.evaluate(BROKEN_WORDS) == ["Environment"]
    await page.set_content("<p>no skip link</p><button>go</button>")
    assert await tab_to(page, "button") == "the first Tab stop is not the skip link"
    await page.set_content('<div style="width: 500px">wide</div>')
    assert await page.evaluate("document.documentElement.scrollWidth") > NARROW["width"]
    await context.close()
