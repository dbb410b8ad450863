"""The operations pages of the web UI in a real browser (Debian's Chromium driven by Playwright) against a real
`corral serve`: pipelines pushed with the git CLI run on the local executor (graph, stored and live logs with
ANSI colours, cancel, restart), a deployment without a cluster (objects, history, rollback), OTLP logs and spans
sent to the receiver (log search, trace waterfall), the account page (TOTP QR code, token create and revoke),
the dashboard's summaries; a viewer sees the actions absent or disabled and a post refused; hostile log lines
render as text. Screenshots go to the test's tmp dir. Every wait is bounded."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
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
    git,
    no_xss,
    sign_in,
    ui_server,
)

pytestmark = pytest.mark.e2e

XSS_LOG = "<script>window.__xss=5</script><img src=x onerror=window.__xss=6>"
PIPELINE = f"""\
steps:
  build:
    image: busybox
    commands:
      - printf '\\033[31mred build\\033[0m plain\\n'
      - echo '{XSS_LOG}'
  test:
    image: busybox
    depends_on: [build]
    commands:
      - echo testing
      - exit 2
"""
SLOW = """\
steps:
  wait:
    image: busybox
    commands:
      - echo waiting
      - for i in $(seq 1 120); do echo "tick $i"; sleep 1; done
"""
DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: "{{ image_ref }}"
"""


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    yield from ui_server(tmp_path, db_dsn, valkey_url, CORRAL_DEPLOY_CLUSTER="none", CORRAL_OTLP_DECODE_PROCESSES="0")


def until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def otlp(server: CorralProcess, path: str, body: dict[str, Any], token: str) -> None:
    req = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def seed(server: CorralProcess, tmp: Path) -> dict[str, Any]:
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "demo"}, token)
    api(server, "POST", "/api/v1/projects", {"name": "ops"}, token)
    remote = server.base_url.replace("http://", f"http://ada:{token}@")
    # the ops repository of the deployment
    ops = tmp / "ops"
    ops.mkdir()
    git(ops, "init", "-q", "-b", "main")
    (ops / "apps" / "web").mkdir(parents=True)
    (ops / "apps" / "web" / "deployment.yaml").write_text(DEPLOYMENT_YAML)
    git(ops, "add", "-A")
    git(ops, "commit", "-qm", "ops")
    git(ops, "push", "-q", f"{remote}/ada/ops.git", "main")
    # a pipeline that fails in its second step, and one that waits (to be cancelled)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / ".woodpecker.yaml").write_text(PIPELINE)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "ci")
    git(work, "push", "-q", f"{remote}/ada/demo.git", "main")
    base = "/api/v1/projects/ada/demo"
    failed = until("the first pipeline to fail", lambda: next(
        (p for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]
         if p["status"] in ("failure", "error")), None))
    git(work, "checkout", "-qb", "slow")
    (work / ".woodpecker.yaml").write_text(SLOW)
    git(work, "commit", "-qam", "slow ci")
    git(work, "push", "-q", f"{remote}/ada/demo.git", "slow")
    slow = until("the slow pipeline to run", lambda: next(
        (p for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]
         if p["ref"].endswith("slow") and p["status"] == "running"), None))
    # a deployment (no cluster: rendered, not applied) with two desired states
    api(server, "POST", "/api/v1/ops-repos", {"name": "ops", "project": "ada/ops", "branch": "main", "path": ""},
        token)
    for image in ("registry.example/web:1", "registry.example/web:2"):
        api(server, "PUT", f"{base}/deployments/staging", {"ops_repo": "ops", "app_path": "apps/web",
                                                           "image_ref": image, "namespace": "web"}, token)
    # telemetry: a trace of two spans and logs (one hostile) through the OTLP receiver
    trace_id = uuid.uuid4().hex
    now = time.time_ns()
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "ui-e2e"}}]}
    otlp(server, "/v1/traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [
        {"traceId": trace_id, "spanId": "0102030405060708", "name": "handle-request", "kind": 2,
         "startTimeUnixNano": str(now - 50_000_000), "endTimeUnixNano": str(now),
         "attributes": [{"key": "http.route", "value": {"stringValue": "/checkout"}}]},
        {"traceId": trace_id, "spanId": "1112131415161718", "parentSpanId": "0102030405060708",
         "name": "db-query", "kind": 3, "startTimeUnixNano": str(now - 40_000_000),
         "endTimeUnixNano": str(now - 10_000_000), "status": {"code": 2},
         "attributes": [{"key": "db.statement", "value": {"stringValue": "SELECT 1"}}]},
    ]}]}]}, token)
    otlp(server, "/v1/logs", {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(now), "severityNumber": 17, "severityText": "ERROR", "traceId": trace_id,
         "spanId": "1112131415161718", "body": {"stringValue": f"query failed {XSS_LOG}"}},
        {"timeUnixNano": str(now - 1000), "severityNumber": 9, "severityText": "INFO",
         "body": {"stringValue": "request served"}},
    ]}]}]}, token)
    until("the logs to be searchable", lambda: api(server, "GET", f"/api/v1/observe/logs?trace_id={trace_id}",
                                                   token=token)["items"], timeout=30)
    api(server, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    return {"token": token, "failed": failed["number"], "slow": slow["number"], "trace_id": trace_id}


async def test_operations_pages_as_admin_and_viewer(server: CorralProcess, browser: Any,  # noqa: F811
                                                    tmp_path: Path) -> None:
    from playwright.async_api import expect

    data = seed(server, tmp_path)
    token = data["token"]
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.on("dialog", lambda d: d.accept())
    await sign_in(page, server, ADMIN)

    # dashboard: the running pipeline and the deployment, not "not shown yet"
    await expect(page.locator("#running-pipelines")).to_contain_text(f"ada/demo #{data['slow']}")
    await expect(page.locator("#deployment-health")).to_contain_text("ada/demo · staging")
    assert "Not shown in the UI yet" not in await page.inner_text("main")
    await shots(page, "30-dashboard-summaries")

    # the pipelines list and the failed pipeline: graph, statuses, the failed step's log with colours, as text
    await page.goto(server.base_url + "/ui/ada/demo")
    await page.click("nav.tabs a:has-text('Pipelines')")
    await expect(page.locator("#pipeline-list")).to_contain_text(f"#{data['failed']}")
    await shots(page, "31-pipelines")
    await page.click(f"#pipeline-list a:text-is('#{data['failed']}')")
    await expect(page.locator("#pipeline-title .status")).to_have_text("failure")
    await expect(page.locator("#workflows .dag-step[data-step=build]")).to_contain_text("success")
    await expect(page.locator("#workflows .dag-step[data-step=test]")).to_contain_text("failure")
    await expect(page.locator("#step-log")).to_contain_text("testing")  # the failed step is shown first
    await page.click("#workflows .dag-step a:text-is('build')")
    await expect(page.locator("#step-log span.a-31").last).to_have_text("red build")
    await expect(page.locator("#step-log")).to_contain_text(XSS_LOG)
    assert await page.locator("#step-log img, #step-log script").count() == 0
    await no_xss(page)
    line = page.locator("#step-log .line").first
    anchor = await line.locator("a.ln").get_attribute("href")
    assert anchor == f"#{await line.get_attribute('id')}"
    await shots(page, "32-pipeline-failed")
    # restart from the failed step: a new pipeline whose parent is this one
    await expect(page.locator(".restart-step button")).to_have_text("Restart from test")
    await page.click(".restart-step button")
    await expect(page.locator("#pipeline-title")).not_to_contain_text(f"#{data['failed']} ")
    await expect(page.locator("main")).to_contain_text(f"restart of #{data['failed']}")

    # the slow pipeline: its log follows live (SSE), then cancel
    await page.goto(server.base_url + f"/ui/ada/demo/pipelines/{data['slow']}")
    await expect(page.locator("#step-log")).to_have_attribute("data-follow", re.compile(r"/logs/wait\?workflow="))
    await expect(page.locator("#step-log")).to_contain_text("waiting")
    shown = await page.locator("#step-log .line").count()
    # new lines arrive without a reload (ui.js follows the SSE stream), each once, numbered on from the stored ones
    await expect(page.locator(f"#step-log #L{shown + 2}")).to_contain_text("tick", timeout=20_000)
    ids = await page.eval_on_selector_all("#step-log .line", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)) and ids == [f"L{n}" for n in range(1, len(ids) + 1)], ids
    await shots(page, "33-pipeline-running")
    await page.click("#cancel-button")
    await page.wait_for_url(f"**/ui/ada/demo/pipelines/{data['slow']}")
    for _ in range(60):  # the cancel stops the step's process group; the pipeline ends a moment later
        if await page.inner_text("#pipeline-title .status") == "killed":
            break
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(page.locator("#pipeline-title .status")).to_have_text("killed")
    assert await page.locator("#cancel-form").count() == 0
    detail = api(server, "GET", f"/api/v1/projects/ada/demo/pipelines/{data['slow']}", token=token)
    assert detail["status"] == "killed"

    # the deployment: environments, objects rendered without a cluster, history, rollback
    await page.click("nav.tabs a:has-text('Deployments')")
    await expect(page.locator("#environment-list")).to_contain_text("staging")
    await page.click("#environment-list a:has-text('staging')")
    assert page.url.endswith("/ui/ada/demo/deployments/staging")
    await expect(page.locator("#image-ref")).to_have_text("registry.example/web:2")
    await expect(page.locator("#object-list")).to_contain_text("Deployment web/web")
    await page.click("#object-list summary")
    await expect(page.locator("#object-list pre")).to_contain_text("image: registry.example/web:2")
    await expect(page.locator("#history-table tbody tr")).to_have_count(2)
    await shots(page, "34-deployment")
    await page.click(".rollback-to")
    await expect(page.locator("#image-ref")).to_have_text("registry.example/web:1")
    await expect(page.locator("#history-table")).to_contain_text("rollback")
    assert api(server, "GET", "/api/v1/projects/ada/demo/deployments/staging", token=token)[
        "image_ref"] == "registry.example/web:1"

    # logs: search by level, the hostile message as text, the link to the trace
    await page.click("nav.nav a:has-text('Logs')")
    await expect(page.locator("#log-table")).to_contain_text("request served")
    await page.select_option("#log-filters select[name=level]", "error")
    await page.fill("#log-filters input[name=service]", "ui-e2e")
    await page.click("#log-filters button")
    await expect(page.locator("#log-table tbody tr")).to_have_count(1)
    await expect(page.locator("#log-table")).to_contain_text(f"query failed {XSS_LOG}")
    assert await page.locator("#log-table img").count() == 0, await page.inner_html("#log-table")
    await no_xss(page)
    await shots(page, "35-logs")
    await page.click("#log-table a:has-text('trace')")
    # the trace: an SVG waterfall (two bars), attributes on click, the logs of the trace
    await expect(page.locator("#waterfall rect")).to_have_count(2)
    assert await page.locator("#waterfall rect.bar-err").count() == 1
    await expect(page.locator("#span-1")).not_to_have_attribute("open", "")
    await page.locator("#waterfall g[data-span='1']").click()
    await expect(page.locator("#span-1")).to_have_attribute("open", "")
    await expect(page.locator("#span-1")).to_contain_text("SELECT 1")
    await shots(page, "36-trace")
    await page.click("#trace-logs")
    await expect(page.locator("#log-table tbody tr")).to_have_count(1)

    # account: TOTP enrolment shows a QR code; a token is shown once, then revoked
    await page.click("#me-name")
    await page.click("#totp-enrol")
    qr = await page.get_attribute("#totp-qr", "src")
    assert qr is not None and qr.startswith("data:image/svg+xml")
    assert await page.evaluate("document.getElementById('totp-qr').naturalWidth") > 0
    await expect(page.locator("#totp-secret")).not_to_be_empty()
    await shots(page, "37-account-totp")
    await page.fill("#token-name", "ci-bot")
    await page.check("#token-form input[value='project:read']")
    await page.click("#token-create")
    secret = (await page.inner_text("#new-token-value")).strip()
    req = urllib.request.Request(server.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["permissions"] == ["project:read"]
    await shots(page, "38-account-token")
    await page.goto(server.base_url + "/ui/account")
    assert await page.locator("#new-token").count() == 0  # shown once
    await expect(page.locator("#token-list")).to_contain_text("ci-bot")
    await page.click("#token-list button[data-name='ci-bot']")
    await expect(page.locator("#token-list")).not_to_contain_text("ci-bot")
    with pytest.raises(urllib.error.HTTPError) as refused_token:
        urllib.request.urlopen(urllib.request.Request(server.base_url + "/api/v1/me",
                                                      headers={"Authorization": f"Bearer {secret}"}), timeout=10)
    assert refused_token.value.code == 401
    await context.close()

    # the viewer: reads the pages; cancel/restart absent, rollback/promote disabled, a post refused
    viewer = await browser.new_context(viewport={"width": 1280, "height": 900})
    viewer.set_default_timeout(TIMEOUT_MS)
    vpage = await viewer.new_page()
    await sign_in(vpage, server, VIEWER, f"/ui/?next=/ui/ada/demo/pipelines/{data['failed']}")
    await expect(vpage.locator("#pipeline-title")).to_contain_text(f"#{data['failed']}")
    assert await vpage.locator("#restart-form, #cancel-form, .restart-step").count() == 0
    await expect(vpage.locator(".denied")).to_contain_text("pipeline:run")
    await shots(vpage, "39-viewer-pipeline")
    csrf = next(c["value"] for c in await viewer.cookies() if c["name"] == "corral_csrf")
    refused = await vpage.request.post(server.base_url + f"/ui/ada/demo/pipelines/{data['failed']}/restart",
                                       form={"csrf_token": csrf}, headers={"Accept": "text/html"})
    assert refused.status == 403 and "pipeline:run" in await refused.text()
    await vpage.goto(server.base_url + "/ui/ada/demo/deployments/staging")
    await expect(vpage.locator("#rollback-button")).to_be_disabled()
    await expect(vpage.locator("#actions .denied")).to_contain_text("deploy:promote")
    assert await vpage.locator("#rollback-form").count() == 0
    await shots(vpage, "40-viewer-deployment")
    refused = await vpage.request.post(server.base_url + "/ui/ada/demo/deployments/staging/rollback",
                                       form={"csrf_token": csrf}, headers={"Accept": "text/html"})
    assert refused.status == 403 and "deploy:promote" in await refused.text()
    await viewer.close()
    assert all(p.stat().st_size > 0 for p in shots.taken)
