"""The observe and system pages of the web UI in a real browser (Debian's Chromium driven by Playwright) against a
real `corral serve` (its `claude` the stand-in): metric charts of OTLP gauges (an SVG line per series, label
filters, a time range, the empty state), alert rules made, fired, disabled, edited and deleted from the pages
with their events, an agent session's timeline linked from its page, the log search's live tail and paging, and
the admin's system status (master-key id and rotation, dependency health). A viewer sees the actions absent with
the permission named and a post refused; hostile label, rule and log text renders as text; every page fits 390 px
and reads without JavaScript. Screenshots go to the test's tmp dir. Every wait is bounded."""

from __future__ import annotations

import re
import time
import urllib.error
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
    no_xss,
    sign_in,
    standin_claude,
    ui_server,
)
from tests.e2e.test_ui_ops_browser import otlp, until

pytestmark = pytest.mark.e2e

XSS = "<script>window.__xss=11</script><img src=x onerror=window.__xss=12>"


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    yield from ui_server(tmp_path, db_dsn, valkey_url, CORRAL_AGENT_CLAUDE_COMMAND=str(standin_claude(tmp_path)),
                         CORRAL_OBSERVE_SELF="false", CORRAL_OTLP_DECODE_PROCESSES="0",
                         CORRAL_OBSERVE_ALERT_SECONDS="1")


def attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def send_logs(server: CorralProcess, token: str, service: str, messages: list[str], **resource: str) -> None:
    now = time.time_ns()
    res = {"attributes": [attr("service.name", service), *(attr(k, v) for k, v in resource.items())]}
    otlp(server, "/v1/logs", {"resourceLogs": [{"resource": res, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(now + i * 1000), "severityNumber": 17 if "error" in m else 9,
         "severityText": "ERROR" if "error" in m else "INFO", "body": {"stringValue": m}}
        for i, m in enumerate(messages)]}]}]}, token)


def seed(server: CorralProcess) -> dict[str, Any]:
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "demo"}, token)
    api(server, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    # an agent session (the stand-in answers with a line) whose telemetry is sent below
    session = api(server, "POST", "/api/v1/projects/ada/demo/agent-sessions",
                  {"prompt": f"hello {XSS}", "max_turns": 3}, token)
    session_id = session["id"]
    until("the agent to answer", lambda: any(
        e["type"] in ("text", "result") for e in api(server, "GET", f"/api/v1/agent-sessions/{session_id}/events",
                                                     token=token)["items"]), timeout=60)
    # metrics: a gauge with two series (one label value hostile), five points a minute apart
    now = time.time_ns()
    resource = {"attributes": [attr("service.name", "obs-e2e"), attr("corral.project", "ada/demo")]}
    points = [{"timeUnixNano": str(now - (4 - i) * 60_000_000_000), "asDouble": float(10 + i * k),
               "attributes": [attr("host", host)]} for k, host in ((1, "alpha"), (5, XSS)) for i in range(5)]
    otlp(server, "/v1/metrics", {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
        {"name": "queue_latency", "unit": "ms", "gauge": {"dataPoints": points}}]}]}]}, token)
    # the session's telemetry: a span and logs (one hostile) carrying its id
    trace_id = uuid.uuid4().hex
    session_res = {"attributes": [attr("service.name", "obs-agent"), attr("corral.session_id", session_id),
                                  attr("corral.project", "ada/demo")]}
    otlp(server, "/v1/traces", {"resourceSpans": [{"resource": session_res, "scopeSpans": [{"spans": [
        {"traceId": trace_id, "spanId": "0102030405060708", "name": "tool-call", "kind": 1,
         "startTimeUnixNano": str(now - 20_000_000), "endTimeUnixNano": str(now)}]}]}]}, token)
    send_logs(server, token, "obs-agent", [f"session error {XSS}", "session step done"],
              **{"corral.session_id": session_id, "corral.project": "ada/demo"})
    # logs for paging: five records of one service
    send_logs(server, token, "paging-e2e", [f"page line {i}" for i in range(5)])
    until("the metric to be queryable", lambda: api(
        server, "GET", "/api/v1/observe/metrics?name=queue_latency&since=1h&step=60", token=token)["series"])
    until("the logs to be searchable", lambda: len(api(
        server, "GET", "/api/v1/observe/logs?service=paging-e2e", token=token)["items"]) == 5)
    until("the session's telemetry", lambda: {"session step done", "tool-call"} <= {
        i.get("message") or i.get("name") for i in api(
            server, "GET", f"/api/v1/observe/sessions/{session_id}/timeline", token=token)["items"]})
    return {"token": token, "session": session_id, "trace_id": trace_id}


async def fits_390(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width} px wide at 390"


async def test_observe_and_system_pages(server: CorralProcess, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from playwright.async_api import expect

    data = seed(server)
    token = data["token"]
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.on("dialog", lambda d: d.accept())
    await sign_in(page, server, ADMIN, "/ui/?next=/ui/observe/logs")

    # metrics: reached from the observe tabs; a line per series, axes with the unit, a legend naming the labels
    await page.click("#observe-tabs a:has-text('Metrics')")
    await expect(page.locator("#metric-name")).to_have_value("queue_latency")
    await expect(page.locator("#metric-chart svg polyline")).to_have_count(2)
    await expect(page.locator("#chart-legend li")).to_have_count(2)
    await expect(page.locator("#chart-legend")).to_contain_text(f"host={XSS}")
    await expect(page.locator("#chart-legend")).to_contain_text("host=alpha (5 points)")
    assert await page.locator("main img, main script").count() == 0
    ticks = await page.locator("#metric-chart svg text").all_text_contents()
    assert any(t.endswith(" ms") for t in ticks) and any(re.fullmatch(r"\d\d:\d\d", t) for t in ticks), ticks
    titles = await page.locator("#metric-chart svg circle title").all_text_contents()
    assert len(titles) == 10 and any(t.startswith("host=alpha: 10 ms at ") for t in titles), titles
    assert any(t.startswith(f"host={XSS}: 30 ms at ") for t in titles), titles
    await no_xss(page)
    await shots(page, "70-metrics")
    # a label filter and another time range and aggregation: one series
    await page.fill("#metric-filters input[name=labels]", "host:alpha")
    await page.select_option("#metric-range", "15m")
    await page.select_option("#metric-filters select[name=agg]", "max")
    await page.click("#metric-filters button")
    await expect(page.locator("#metric-chart svg polyline")).to_have_count(1)
    await expect(page.locator("#chart-title")).to_contain_text("queue_latency")
    assert "last=15m" in page.url and "agg=max" in page.url
    # the empty state
    await page.fill("#metric-filters input[name=labels]", "host:nowhere")
    await page.click("#metric-filters button")
    await expect(page.locator("#no-data")).to_contain_text("No data for queue_latency")
    await expect(page.locator("#metric-chart")).to_have_count(0)
    # a custom range that is not a time: the error, not a crash
    await page.select_option("#metric-range", "custom")
    await page.fill("#metric-filters input[name=labels]", "")
    await page.fill("#metric-filters input[name=since]", "yesterday-ish")
    await page.click("#metric-filters button")
    await expect(page.locator("#metric-error")).to_contain_text("since")

    # alerts: a rule made in the form (hostile name) fires on the error log above; events list it
    await page.click("#observe-tabs a:has-text('Alerts')")
    await expect(page.locator("#no-rules")).to_be_visible()
    form = page.locator("#alert-create")
    await form.locator("input[name=name]").fill(f"errors {XSS}")
    await form.locator("input[name=query]").fill("logs: level=error window=1h")
    await form.locator("select[name=condition]").select_option("gt")
    await form.locator("input[name=threshold]").fill("0")
    await form.locator("input[name=for_seconds]").fill("0")
    await form.locator("input[name=project]").fill("ada/demo")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#done")).to_contain_text("created")
    await expect(page.locator("#rule-table tbody tr")).to_have_count(1)
    await expect(page.locator("#rule-table")).to_contain_text(f"errors {XSS}")
    rules = api(server, "GET", "/api/v1/alert-rules?project=ada/demo", token=token)["items"]
    assert [(r["name"], r["query"], r["threshold"], r["project"]) for r in rules] == [
        (f"errors {XSS}", "logs: level=error window=1h", 0.0, "ada/demo")]
    rule_id = rules[0]["id"]
    until("the rule to fire", lambda: api(server, "GET", "/api/v1/alerts?status=firing", token=token)["items"],
          timeout=30)
    await page.reload()
    await expect(page.locator("#rule-table .status")).to_have_text("firing")
    await expect(page.locator("#event-table")).to_contain_text("firing")
    await page.click("#event-filter a:text-is('firing')")
    await expect(page.locator("#event-table tbody tr")).to_have_count(1)
    await no_xss(page)
    await shots(page, "71-alerts")
    # disable, then edit (threshold) on the rule's page, then delete a second rule made through the API
    await page.click("#rule-table .toggle-rule")
    await expect(page.locator("#done")).to_contain_text("disabled")
    assert api(server, "GET", f"/api/v1/alert-rules/{rule_id}", token=token)["enabled"] is False
    await page.click(f"#rule-table a[href='/ui/observe/alerts/{rule_id}']")
    await expect(page.locator("#rule-title")).to_contain_text(f"errors {XSS}")
    await expect(page.locator("#rule-events")).to_contain_text("firing")
    await page.fill("#alert-edit input[name=threshold]", "1000")
    await page.check("#alert-edit input[name=enabled]")
    await page.click("#alert-edit button[type=submit]")
    await expect(page.locator("#rule-details")).to_contain_text("gt 1000.0")
    changed = api(server, "GET", f"/api/v1/alert-rules/{rule_id}", token=token)
    assert (changed["threshold"], changed["enabled"]) == (1000.0, True)
    await no_xss(page)
    await shots(page, "72-alert-rule")
    other = api(server, "POST", "/api/v1/alert-rules", {"name": "spare", "query": "metric:queue_latency avg 5m",
                                                         "condition": "absent", "project": "ada/demo"}, token)
    await page.goto(server.base_url + "/ui/observe/alerts")
    await page.click("#rule-table tr[data-rule=spare] .delete-rule")
    await expect(page.locator("#done")).to_contain_text("deleted spare")
    with pytest.raises(urllib.error.HTTPError) as gone:
        api(server, "GET", f"/api/v1/alert-rules/{other['id']}", token=token)
    assert gone.value.code == 404

    # the session's timeline, linked from the agent session's page: messages, logs and the span in time order
    await page.goto(server.base_url + f"/ui/agent-sessions/{data['session']}")
    await page.click("#timeline-link")
    await expect(page.locator("#timeline-summary")).to_contain_text(re.compile(r"[1-9]\d* messages?, [2-9]\d* log "
                                                                              r"records and [1-9]\d* spans?"))
    await expect(page.locator("#timeline li[data-kind=message]").first).to_be_visible()
    await expect(page.locator("#timeline")).to_contain_text(f"hello {XSS}")
    await expect(page.locator("#timeline")).to_contain_text(f"session error {XSS}")
    await expect(page.locator("#timeline li[data-kind=span] a")).to_have_attribute(
        "href", f"/ui/observe/traces/{data['trace_id']}?project=ada/demo")
    stamps = await page.eval_on_selector_all("#timeline li span[title]", "els => els.map(e => e.title)")
    assert len(stamps) >= 4
    assert await page.locator("#timeline img, #timeline script").count() == 0
    await no_xss(page)
    await shots(page, "73-session-timeline")

    # logs: paging with the filters kept, then the live tail follows new records of the filter (WebSocket)
    await page.goto(server.base_url + "/ui/observe/logs?service=paging-e2e&limit=2")
    await expect(page.locator("#log-table tbody tr")).to_have_count(2)
    await expect(page.locator("#log-table tbody tr").first).to_contain_text("page line 4")
    await page.click("#older-logs")
    await expect(page.locator("#log-table tbody tr").first).to_contain_text("page line 2")
    assert "service=paging-e2e" in page.url and "limit=2" in page.url
    await page.click("#older-logs")
    await expect(page.locator("#log-table tbody tr")).to_have_count(1)
    await page.click("#newest-logs")
    await expect(page.locator("#log-table tbody tr").first).to_contain_text("page line 4")
    await page.goto(server.base_url + "/ui/observe/logs?service=live-e2e")
    await expect(page.locator("#no-logs")).to_be_visible()
    await page.check("#live")
    await expect(page.locator("#live-status")).to_have_attribute("data-live", "1")
    for _ in range(20):  # the socket is open; the server's subscription follows a moment later: probe until it shows
        send_logs(server, token, "live-e2e", ["live probe"])
        if await page.locator("#log-table").count():
            break
        await page.wait_for_timeout(500)
    await expect(page.locator("#log-table")).to_contain_text("live probe")
    send_logs(server, token, "other-service", ["not for this tail"])
    send_logs(server, token, "live-e2e", [f"live one {XSS}", "live two"])
    await expect(page.locator("#log-table tbody tr").first).to_contain_text("live two")
    await expect(page.locator("#log-table tbody tr").nth(1)).to_contain_text(f"live one {XSS}")
    await expect(page.locator("#log-table")).to_contain_text(f"live one {XSS}")
    await expect(page.locator("#log-table")).not_to_contain_text("not for this tail")
    assert await page.locator("#log-table img").count() == 0
    await no_xss(page)
    await shots(page, "74-logs-live")
    await page.uncheck("#live")
    await expect(page.locator("#live-status")).to_have_text("Paused.")

    # system status: key id (never key material), rotation state, every dependency answers
    await page.goto(server.base_url + "/ui/admin/users")
    await page.click("#admin-tabs a:has-text('System')")
    await expect(page.locator("#key-id")).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    await expect(page.locator("#rotation-state")).to_contain_text("complete")
    for dependency in ("postgresql", "valkey", "object_store"):
        await expect(page.locator(f"#health-table tr[data-check={dependency}] .status")).to_have_text("ok")
    await expect(page.locator("#system-ready")).to_contain_text("ready")
    await expect(page.locator("#system-version")).not_to_be_empty()
    await shots(page, "75-admin-system")

    # 390 px: every page fits
    state = await context.storage_state()
    narrow = await browser.new_context(viewport={"width": 390, "height": 844}, storage_state=state)
    narrow.set_default_timeout(TIMEOUT_MS)
    npage = await narrow.new_page()
    for path in ("/ui/observe/metrics", "/ui/observe/alerts", f"/ui/observe/alerts/{rule_id}",
                 f"/ui/observe/sessions/{data['session']}?project=ada/demo", "/ui/observe/logs", "/ui/admin/system"):
        await npage.goto(server.base_url + path)
        await expect(npage.locator("main h1")).to_be_visible()
        await fits_390(npage)
    await shots(npage, "76-system-390")
    await narrow.close()

    # without JavaScript: the chart is there, the log search and paging work, the live toggle is not offered
    nojs = await browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False,
                                     storage_state=await context.storage_state())
    nojs.set_default_timeout(TIMEOUT_MS)
    jpage = await nojs.new_page()
    await jpage.goto(server.base_url + "/ui/observe/metrics")
    await expect(jpage.locator("#metric-chart svg polyline")).to_have_count(2)
    await jpage.goto(server.base_url + "/ui/observe/logs")
    await jpage.fill("#log-filters input[name=service]", "paging-e2e")
    await jpage.fill("#log-filters input[name=since]", "1h")
    await jpage.click("#log-filters button[type=submit]")
    await expect(jpage.locator("#log-table tbody tr")).to_have_count(5)
    await expect(jpage.locator("#live-toggle")).to_be_hidden()
    await nojs.close()
    await context.close()

    # the viewer: reads charts, alerts and the timeline; no rule actions, the permission named; posts refused
    viewer = await browser.new_context(viewport={"width": 1280, "height": 900})
    viewer.set_default_timeout(TIMEOUT_MS)
    vpage = await viewer.new_page()
    await sign_in(vpage, server, VIEWER, "/ui/?next=/ui/observe/alerts")
    await expect(vpage.locator("#rule-table")).to_contain_text(f"errors {XSS}")
    await expect(vpage.locator("main .denied")).to_contain_text("alert:manage")
    assert await vpage.locator("#alert-create, .toggle-rule, .delete-rule").count() == 0
    await no_xss(vpage)
    await shots(vpage, "77-viewer-alerts")
    await vpage.goto(server.base_url + f"/ui/observe/alerts/{rule_id}")
    await expect(vpage.locator("main .denied")).to_contain_text("alert:manage")
    assert await vpage.locator("#alert-edit, #delete-rule").count() == 0
    csrf = next(c["value"] for c in await viewer.cookies() if c["name"] == "corral_csrf")
    for action in (f"/{rule_id}/enabled", f"/{rule_id}/delete", ""):
        refused = await vpage.request.post(server.base_url + "/ui/observe/alerts" + action,
                                           form={"csrf_token": csrf, "enabled": "false", "name": "x",
                                                 "query": "logs: level=error", "condition": "absent"},
                                           headers={"Accept": "text/html"}, max_redirects=0)
        assert refused.status == 403 and "alert:manage" in await refused.text(), action
    assert api(server, "GET", f"/api/v1/alert-rules/{rule_id}", token=token)["enabled"] is True
    await vpage.goto(server.base_url + "/ui/observe/metrics")
    await expect(vpage.locator("#metric-chart svg polyline")).to_have_count(2)
    await vpage.goto(server.base_url + f"/ui/observe/sessions/{data['session']}")
    await expect(vpage.locator("#timeline")).to_contain_text("session step done")
    await vpage.goto(server.base_url + "/ui/admin/system")
    await expect(vpage.locator("main")).to_contain_text("admin:settings")
    assert await vpage.locator("#key-id").count() == 0
    await shots(vpage, "78-viewer-system-refused")
    await viewer.close()
    assert all(p.stat().st_size > 0 for p in shots.taken)
