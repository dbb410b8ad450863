"""The UI's large pages in a real browser (Debian's Chromium driven by Playwright) against a real `corral serve`:
a commit's diff whose rows are rendered in one pass, and a trace of more spans than its page lists details for
(every span keeps its bar; clicking a later bar, or the link without JavaScript, shows every span's details).
Hostile text in a diff line and a span name renders as text; both pages fit 390 px. Screenshots go to the test's
tmp dir. Every wait is bounded."""

from __future__ import annotations

import json
import time
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

XSS = "<script>window.__xss=7</script><img src=x onerror=window.__xss=8>"
SPANS = 520  # more than the 500 a trace page lists the details of
LINES = 300


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    yield from ui_server(tmp_path, db_dsn, valkey_url, CORRAL_DEPLOY_CLUSTER="none", CORRAL_OTLP_DECODE_PROCESSES="0")


def otlp(server: CorralProcess, path: str, body: dict[str, Any], token: str) -> None:
    req = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def seed(server: CorralProcess, tmp: Path) -> dict[str, Any]:
    token = admin_token(server)
    api(server, "POST", "/api/v1/projects", {"name": "big"}, token)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.txt").write_text("".join(f"line {i}\n" for i in range(LINES)))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first")
    (work / "a.txt").write_text("".join(f"line {i}{' changed' if i % 3 == 0 else ''}\n" for i in range(LINES))
                                + f"{XSS}\n")
    git(work, "commit", "-qam", "change every third line")
    sha = git(work, "rev-parse", "HEAD").strip()
    git(work, "push", "-q", server.base_url.replace("http://", f"http://ada:{token}@") + "/ada/big.git", "main")
    # a trace of SPANS spans under one root, the hostile one past the listed details
    trace_id = uuid.uuid4().hex
    start = time.time_ns() - 10_000_000_000
    spans = [{"traceId": trace_id, "spanId": f"{i + 1:016x}", "name": XSS if i == SPANS - 5 else f"step {i}",
              **({"parentSpanId": f"{1:016x}"} if i else {}), "kind": 1,
              "startTimeUnixNano": str(start + i * 1_000_000), "endTimeUnixNano": str(start + i * 1_000_000 + 900_000
                                                                                     if i else start + 9_000_000_000),
              "attributes": [{"key": "n", "value": {"intValue": str(i)}}]} for i in range(SPANS)]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "big-e2e"}}]}
    otlp(server, "/v1/traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}, token)
    deadline = time.monotonic() + 30
    while len(api(server, "GET", f"/api/v1/observe/traces/{trace_id}", token=token)["spans"]) < SPANS:
        assert time.monotonic() < deadline, "the spans were not stored"
        time.sleep(0.3)
    api(server, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    return {"sha": sha, "trace_id": trace_id}


async def fits_390(page: Any) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width}px wide at 390px"
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_large_diff_and_trace_pages(server: CorralProcess, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from playwright.async_api import expect

    data = seed(server, tmp_path)
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await sign_in(page, server, ADMIN)

    # the commit: every diff row (hunks, context, changes), numbered; the hostile line as text
    await page.goto(f"{server.base_url}/ui/ada/big/commit/{data['sha']}")
    changed = LINES // 3
    await expect(page.locator("table.diff tr.add")).to_have_count(changed + 1)
    await expect(page.locator("table.diff tr.del")).to_have_count(changed)
    assert await page.locator("table.diff tr.hunk").count() >= 1
    added = page.locator("table.diff tr.add").last
    await expect(added.locator("td.code")).to_have_text(f"+{XSS}")
    await expect(added.locator("td.ln").nth(1)).to_have_text(str(LINES + 1))
    await no_xss(page)
    await shots(page, "60-large-commit")
    await fits_390(page)

    # the trace: every bar, the details of the first 500, and the link to all of them
    trace = f"{server.base_url}/ui/observe/traces/{data['trace_id']}"
    await page.goto(trace)
    await expect(page.locator("#waterfall g[data-span]")).to_have_count(SPANS)
    await expect(page.locator("#span-list details")).to_have_count(500)
    await expect(page.locator("#more-spans")).to_contain_text(f"first 500 of {SPANS} spans")
    await page.locator("#waterfall g[data-span='3'] text").click()  # the label: the bar is thin
    await expect(page.locator("#span-3")).to_have_attribute("open", "")
    await shots(page, "61-large-trace")
    await fits_390(page)
    # a bar past the listed details: the page with all of them, that span open
    hostile = SPANS - 5
    await page.locator(f"#waterfall g[data-span='{hostile}'] text").click()
    await page.wait_for_url(f"**spans=all#span-{hostile}")
    await expect(page.locator("#span-list details")).to_have_count(SPANS)
    await expect(page.locator(f"#span-{hostile}")).to_have_attribute("open", "")
    await expect(page.locator(f"#span-{hostile} summary strong")).to_have_text(XSS)
    assert await page.locator("#more-spans").count() == 0
    await no_xss(page)
    await shots(page, "62-large-trace-all")

    # without JavaScript: the link lists them all
    plain = await browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    plain.set_default_timeout(TIMEOUT_MS)
    await plain.add_cookies(await context.cookies())
    nojs = await plain.new_page()
    await nojs.goto(trace)
    await expect(nojs.locator("#span-list details")).to_have_count(500)
    await nojs.click("#all-spans")
    await expect(nojs.locator("#span-list details")).to_have_count(SPANS)
    await plain.close()
    await context.close()

    # a viewer reads both pages (they have no actions)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await sign_in(page, server, VIEWER)
    await page.goto(f"{server.base_url}/ui/ada/big/commit/{data['sha']}")
    await expect(page.locator("table.diff tr.del")).to_have_count(changed)
    await page.goto(trace)
    await expect(page.locator("#waterfall g[data-span]")).to_have_count(SPANS)
    await no_xss(page)
    await shots(page, "63-large-trace-viewer")
    await context.close()
