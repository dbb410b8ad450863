"""The code pages of the web UI in a real browser (Debian's Chromium driven by Playwright) against a real
`corral serve`: branches and tags with their forms and archives, comparing two refs (and opening a merge request
from there), raw files served as text, a path's history, docs/ rendered with working relative links, releases
(create, edit, delete), unified and split diffs (the choice remembered), editing, labelling, assigning and
closing issues and merge requests, list filters, and a merge request's pipeline. A viewer sees the actions absent
with the permission named and a post refused; hostile text renders as text; nothing runs off a 390 px screen.
Screenshots go to the test's tmp dir. Every wait is bounded."""

from __future__ import annotations

import time
import urllib.request
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
    server,  # noqa: F401 (the fixture)
    sign_in,
)

pytestmark = pytest.mark.e2e

XSS = "<script>window.__xss=7</script><img src=x onerror=window.__xss=8>"
APP_MAIN = "".join(f"line {n}\n" for n in range(1, 21))
APP_FEATURE = APP_MAIN.replace("line 5\n", "line five\n").replace("line 12\n", "") + "line 21\nline 22\n"
PIPELINE = """\
steps:
  check:
    image: busybox
    commands:
      - echo checked
"""


def until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def seed(proc: CorralProcess, tmp: Path) -> dict[str, Any]:
    """A project with docs/, hostile HTML/SVG files, a tag, a feature branch with a pipeline, labels, a milestone,
    an issue, a release asset's bytes, and a viewer."""
    token = admin_token(proc)
    api(proc, "POST", "/api/v1/projects", {"name": "code"}, token)
    work = tmp / "work"
    (work / "docs" / "sub").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Code\n")
    (work / "app.txt").write_text(APP_MAIN)
    (work / "page.html").write_text(f"<html><body>{XSS}</body></html>\n")
    (work / "pic.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>window.__xss=9</script></svg>\n')
    (work / "docs" / "index.md").write_text("# Docs home\n\nSee [the guide](guide.md) and [deep](sub/deep.md).\n")
    (work / "docs" / "guide.md").write_text(f"# Guide\n\nBack [home](index.md). Hostile: {XSS}\n")
    (work / "docs" / "sub" / "deep.md").write_text("# Deep\n\n[Up to the guide](../guide.md)\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first commit")
    git(work, "tag", "v1.0")
    (work / "README.md").write_text("# Code\n\nMore.\n")
    git(work, "commit", "-qam", "readme only")
    git(work, "checkout", "-qb", "feature")
    (work / "app.txt").write_text(APP_FEATURE)
    (work / ".woodpecker.yaml").write_text(PIPELINE)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "rework the app")
    remote = proc.base_url.replace("http://", f"http://ada:{token}@") + "/ada/code.git"
    git(work, "push", "-q", remote, "main", "feature", "v1.0")
    base = "/api/v1/projects/ada/code"
    until("the feature branch's pipeline", lambda: next(
        (p for p in api(proc, "GET", f"{base}/pipelines", token=token)["items"] if p["ref"].endswith("feature")),
        None))
    for label in ("bug", "ui"):
        api(proc, "POST", f"{base}/labels", {"name": label}, token)
    api(proc, "POST", f"{base}/milestones", {"title": "M1"}, token)
    issue = api(proc, "POST", f"{base}/issues", {"title": "Plain issue", "body": "as filed"}, token)
    other = api(proc, "POST", f"{base}/issues", {"title": "Unlabelled issue"}, token)
    api(proc, "POST", "/api/v1/users", {"name": VIEWER["name"], "email": VIEWER["email"],
                                          "password": VIEWER["password"]}, token)
    api(proc, "POST", "/api/v1/role-bindings", {"user": VIEWER["name"], "role": "viewer"}, token)
    return {"token": token, "issue": issue["number"], "other": other["number"]}


def upload_asset(proc: CorralProcess, token: str, release_id: str, name: str, data: bytes) -> None:
    url = f"{proc.base_url}/api/v1/projects/ada/code/releases/{release_id}/assets?name={name}"
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "text/plain", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


async def fits(page: Any, name: str, shots: Shots) -> None:
    """The page at a phone's width: nothing runs off the screen (a screenshot of it too)."""
    size = page.viewport_size
    await page.set_viewport_size({"width": 390, "height": 844})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width}px wide at 390px"
    await shots(page, f"{name}-390")
    await page.set_viewport_size(size)


async def test_code_pages_as_admin_and_viewer(server: CorralProcess, browser: Any,  # noqa: F811
                                              tmp_path: Path) -> None:
    from playwright.async_api import expect

    data = seed(server, tmp_path)
    token = data["token"]
    base = "/api/v1/projects/ada/code"
    ui = server.base_url + "/ui/ada/code"
    shots = Shots(tmp_path / "screenshots")
    print(f"\nUI screenshots: {shots.root}")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    confirms: list[str] = []

    async def accept(dialog: Any) -> None:
        confirms.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await sign_in(page, server, ADMIN)

    # branches: create one from the form, compare links, delete it (confirmed)
    await page.goto(ui + "/branches")
    await page.fill("#branch-name", "topic/one")
    await page.fill("#branch-from", "v1.0")
    await page.click("#branch-form button")
    await expect(page.locator("#branch-list")).to_contain_text("topic/one")
    branches = {b["name"]: b for b in api(server, "GET", f"{base}/repo/branches", token=token)["items"]}
    tags = {t["name"]: t for t in api(server, "GET", f"{base}/repo/tags", token=token)["items"]}
    assert branches["topic/one"]["commit"]["sha"] == tags["v1.0"]["sha"]
    await expect(page.locator("a.compare-link[href$='/compare/main...feature']")).to_have_count(1)
    await shots(page, "c01-branches")
    await page.click("button[aria-label='Delete branch topic/one']")
    await expect(page.locator("#branch-list")).not_to_contain_text("topic/one")
    assert confirms == ["Delete branch topic/one?"]
    assert "topic/one" not in {b["name"] for b in api(server, "GET", f"{base}/repo/branches", token=token)["items"]}

    # tags: commit, date, archives that download; create and delete a tag
    await page.click("#all-tags")
    await expect(page.locator("#tag-list")).to_contain_text("v1.0")
    await expect(page.locator("#tag-list")).to_contain_text("first commit")
    zip_href = await page.locator("#tag-list a.archive", has_text=".zip").first.get_attribute("href")
    archive = await page.request.get(server.base_url + zip_href)
    assert archive.ok and (await archive.body())[:2] == b"PK"
    assert "attachment" in archive.headers["content-disposition"]
    await page.fill("#tag-name", "v1.1")
    await page.fill("#tag-target", "feature")
    await page.click("#tag-form button")
    await expect(page.locator("#tag-list")).to_contain_text("v1.1")
    await expect(page.locator("#tag-list")).to_contain_text("rework the app")
    await shots(page, "c02-tags")
    await fits(page, "c02-tags", shots)
    await page.click("button[aria-label='Delete tag v1.1']")
    await expect(page.locator("#tag-list")).not_to_contain_text("v1.1")

    # compare main...feature: commits and diff, unified then split (remembered), then open a merge request
    await page.goto(ui + "/branches")
    await page.click("a.compare-link[href$='/compare/main...feature']")
    await expect(page.locator("#compare-commits")).to_contain_text("rework the app")
    assert "readme only" not in await page.inner_text("#compare-commits")
    await expect(page.locator("#compare-summary")).to_contain_text("1 commit ahead")
    await expect(page.locator("#compare-summary")).to_contain_text("0 commits behind")
    await expect(page.locator("#files table.diff tr.add", has_text="line five")).to_have_count(1)
    await expect(page.locator("#files table.diff tr.del", has_text="line 5")).to_have_count(1)
    await page.click("#view-split")
    assert "view=split" in page.url
    split = page.locator("#files table.diff.split")
    await expect(split.first).to_be_visible()
    # a changed line sits beside its old version, with both line numbers
    row = page.locator("#files table.diff.split tr", has=page.locator("td.code.del", has_text="line 5"))
    await expect(row.locator("td.code.add")).to_have_text("line five")
    assert [await c.inner_text() for c in await row.locator("td.ln").all()] == ["5", "5"]
    await shots(page, "c03-compare-split")
    await fits(page, "c03-compare-split", shots)
    # the form picks refs too
    await page.goto(ui + "/compare")
    await page.fill("#base", "v1.0")
    await page.fill("#head", "main")
    await page.click("#compare-form button")
    assert page.url.endswith("/compare/v1.0...main")
    await expect(page.locator("#compare-commits")).to_contain_text("readme only")
    await expect(page.locator("table.diff.split")).to_have_count(1)  # split remembered (cookie)
    assert await page.locator("#open-mr").count() == 0  # a tag is no merge request's target
    await page.goto(ui + "/compare/main...feature?view=unified")
    await expect(page.locator("table.diff.split")).to_have_count(0)
    await page.click("#open-mr")
    assert await page.input_value("#source_branch") == "feature"
    assert await page.input_value("#target_branch") == "main"
    await page.fill("#title", f"Rework {XSS}")
    await page.click("#mr-form button")
    await expect(page.locator("#mr-title")).to_contain_text(f"Rework {XSS}")
    await no_xss(page)
    mr_url = page.url
    mr_number = int(mr_url.rsplit("/", 1)[-1])

    # the merge request: pipeline of the source head, split diff, edit, labels, people, milestone, close, reopen
    head = branches["feature"]["commit"]["sha"]

    def newest() -> int:  # the newest pipeline of the source head (a tag or the new merge request may add one)
        return next(p["number"] for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]
                    if p["commit_sha"] == head)

    deadline = time.monotonic() + 30
    while True:
        number = newest()
        await page.reload()
        link = page.locator(f"#mr-pipeline a[href='/ui/ada/code/pipelines/{number}']")
        if (await link.count() == 1 and number == newest()) or time.monotonic() > deadline:
            break
        await page.wait_for_timeout(500)
    await expect(link).to_have_text(f"#{number}")
    await expect(page.locator("#mr-pipeline .status")).to_have_count(1)
    await page.click("#view-split")
    await expect(page.locator("#files table.diff.split td.code.add", has_text="line 22")).to_have_count(1)
    await page.click("#edit-mr summary")
    await page.fill("#edit-title", "Rework the app")
    await page.fill("#edit-body", "Now **faster** " + XSS)
    await page.click("#edit-mr #edit-save")
    await expect(page.locator("#mr-title")).to_contain_text("Rework the app")
    await expect(page.locator("#mr-body strong")).to_have_text("faster")
    await no_xss(page)
    await page.click("#edit-meta summary")
    await page.check("#meta-form input[name=label][value=ui]")
    await page.fill("#meta-assignees", "ada")
    await page.fill("#meta-reviewers", VIEWER["name"])
    await page.select_option("#meta-milestone", label="M1")
    await page.click("#meta-save")
    await expect(page.locator("#mr-labels")).to_have_text("ui")
    await expect(page.locator("#mr-assignees")).to_have_text("ada")
    await expect(page.locator("#mr-reviewers")).to_have_text(VIEWER["name"])
    await expect(page.locator("#mr-milestone")).to_have_text("M1")
    mr = api(server, "GET", f"{base}/merge-requests/{mr_number}", token=token)
    assert mr["title"] == "Rework the app" and mr["labels"] == ["ui"]
    await shots(page, "c04-mr")
    await fits(page, "c04-mr", shots)
    await page.click("#close-mr")
    await expect(page.locator("#mr-title + p .status")).to_have_text("closed")
    await page.click("#reopen-mr")
    await expect(page.locator("#mr-title + p .status")).to_have_text("open")
    # an unknown user is refused with the reason, nothing changes
    await page.click("#edit-meta summary")
    await page.fill("#meta-assignees", "nobody-like-this")
    await page.click("#meta-save")
    await expect(page.locator("#error-page")).to_contain_text("nobody-like-this")
    assert api(server, "GET", f"{base}/merge-requests/{mr_number}", token=token)["labels"] == ["ui"]

    # the merge request list filters
    await page.goto(ui + "/merge-requests")
    await page.select_option("#f-label", "ui")
    await page.click("#list-filters button")
    await expect(page.locator("#mr-list")).to_contain_text("Rework the app")
    await page.select_option("#f-label", "bug")
    await page.click("#list-filters button")
    assert await page.locator("#mr-list").count() == 0
    await page.goto(ui + "/merge-requests?assignee=ada&author=ada&milestone=M1")
    await expect(page.locator("#mr-list")).to_contain_text("Rework the app")

    # an issue: edit the title (hostile) and body, labels, assignee, milestone
    await page.goto(ui + f"/issues/{data['issue']}")
    await page.click("#edit-issue summary")
    await page.fill("#edit-title", f"Edited {XSS}")
    await page.fill("#edit-body", "a *changed* body")
    await page.click("#edit-issue #edit-save")
    await expect(page.locator("#issue-title")).to_contain_text(f"Edited {XSS}")
    await expect(page.locator("#issue-body em")).to_have_text("changed")
    await no_xss(page)
    await page.click("#edit-meta summary")
    await page.check("#meta-form input[name=label][value=bug]")
    await page.check("#meta-form input[name=label][value=ui]")
    await page.fill("#meta-assignee", VIEWER["name"])
    await page.select_option("#meta-milestone", label="M1")
    await page.click("#meta-save")
    await expect(page.locator("#issue-labels")).to_contain_text("bug")
    await expect(page.locator("#issue-labels")).to_contain_text("ui")
    await expect(page.locator("#issue-assignee")).to_have_text(VIEWER["name"])
    await expect(page.locator("#issue-milestone")).to_have_text("M1")
    await page.click("#edit-meta summary")
    await page.uncheck("#meta-form input[name=label][value=ui]")  # remove a label
    await page.click("#meta-save")
    await expect(page.locator("#issue-labels")).to_have_text("bug")
    got = api(server, "GET", f"{base}/issues/{data['issue']}", token=token)
    assert got["labels"] == ["bug"] and got["title"] == f"Edited {XSS}"
    await shots(page, "c05-issue")
    await fits(page, "c05-issue", shots)
    await page.click("#close-issue")
    await expect(page.locator("#issue-title + p .status")).to_have_text("closed")
    await page.click("#reopen-issue")
    await expect(page.locator("#issue-title + p .status")).to_have_text("open")

    # the issue list filters: label, milestone, assignee, author, state
    await page.goto(ui + "/issues")
    await expect(page.locator("#issue-list li")).to_have_count(2)
    await page.select_option("#f-label", "bug")
    await page.click("#list-filters button")
    await expect(page.locator("#issue-list li")).to_have_count(1)
    await expect(page.locator("#issue-list")).to_contain_text("Edited")
    await no_xss(page)
    await shots(page, "c06-issues-filtered")
    await fits(page, "c06-issues-filtered", shots)
    await page.click("#clear-filters")
    await expect(page.locator("#issue-list li")).to_have_count(2)
    await page.fill("#f-assignee", VIEWER["name"])
    await page.click("#list-filters button")
    await expect(page.locator("#issue-list li")).to_have_count(1)
    await page.goto(ui + "/issues?author=" + VIEWER["name"])
    assert await page.locator("#issue-list").count() == 0
    await page.goto(ui + "/issues?author=ada&milestone=M1")
    await expect(page.locator("#issue-list li")).to_have_count(1)
    await page.goto(ui + "/issues?status=closed")
    assert await page.locator("#issue-list").count() == 0
    # the same author filter on the API
    assert len(api(server, "GET", f"{base}/issues?author=ada", token=token)["items"]) == 2
    assert api(server, "GET", f"{base}/issues?author={VIEWER['name']}", token=token)["items"] == []
    assert [m["number"] for m in api(server, "GET", f"{base}/merge-requests?author=ada", token=token)["items"]] == [
        mr_number]

    # raw files: linked from the blob page; HTML and SVG as text/plain with nosniff, never rendered
    await page.goto(ui + "/src/main/page.html")
    raw_href = await page.get_attribute("#raw-link", "href")
    assert raw_href == "/ui/ada/code/raw/main/page.html"
    for path in ("page.html", "pic.svg"):
        raw = await page.request.get(f"{ui}/raw/main/{path}")
        assert raw.ok
        assert raw.headers["content-type"].startswith("text/plain"), raw.headers
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert path in raw.headers["content-disposition"]
        assert "sandbox" in raw.headers["content-security-policy"]
        assert "window.__xss" in await raw.text()
    raw = await page.request.get(f"{ui}/raw/feature/app.txt")
    assert await raw.text() == APP_FEATURE
    await page.goto(server.base_url + raw_href)
    await no_xss(page)
    # history of a path, from the blob and the tree pages
    await page.goto(ui + "/src/main/app.txt")
    await page.click("#history-link")
    await expect(page.locator("#commit-list")).to_contain_text("first commit")
    assert "readme only" not in await page.inner_text("#commit-list")
    await page.goto(ui + "/src/feature/docs")
    await page.click("a:has-text('History')")
    assert "path=docs" in page.url
    await expect(page.locator("#commit-list li")).to_have_count(1)

    # a commit's diff in the view chosen last (split, from the merge request), line numbers on both sides
    await page.goto(ui + f"/commit/{branches['feature']['commit']['sha']}")
    await expect(page.locator("table.diff.split").first).to_be_visible()
    await page.click("#view-unified")
    await expect(page.locator("table.diff.split")).to_have_count(0)
    await expect(page.locator("table.diff tr.add", has_text="line 21").locator("td.ln").nth(1)).to_have_text("20")

    # docs/: the index rendered with the pages listed, relative links between pages
    await page.goto(ui)
    await page.click("nav.tabs a:has-text('Docs')")
    await expect(page.locator("#doc h1")).to_have_text("Docs home")
    await expect(page.locator("#doc-pages")).to_contain_text("guide")
    await expect(page.locator("#doc-pages")).to_contain_text("deep")
    await page.click("#doc a:has-text('the guide')")
    assert page.url.endswith("/ui/ada/code/docs/guide.md")
    await expect(page.locator("#doc h1")).to_have_text("Guide")
    await expect(page.locator("#doc")).to_contain_text("<script>")  # the hostile HTML as text
    assert await page.locator("#doc img").count() == 0
    await no_xss(page)
    await shots(page, "c07-docs")
    await fits(page, "c07-docs", shots)
    await page.click("#doc a:has-text('home')")
    await expect(page.locator("#doc h1")).to_have_text("Docs home")
    await page.click("#doc a:has-text('deep')")
    await expect(page.locator("#doc h1")).to_have_text("Deep")
    await page.click("#doc a:has-text('Up to the guide')")
    await expect(page.locator("#doc h1")).to_have_text("Guide")
    await page.goto(ui + "/docs/sub")
    assert page.url.endswith("/docs/sub/")
    # a Markdown file in the blob view: rendered, with a source toggle
    await page.click("#doc-pages a:has-text('guide')")
    await page.click("#doc-source")
    await expect(page.locator("#code")).to_contain_text("# Guide")
    await page.click("a:has-text('Rendered')")
    await expect(page.locator("#rendered h1")).to_have_text("Guide")
    await no_xss(page)

    # releases: publish from the form (a new tag), notes rendered, assets, edit, later delete
    await page.goto(ui + "/releases")
    await page.click("#new-release")
    await page.fill("#tag", "v2.0")
    await page.select_option("#target", "feature")
    await page.fill("#title", f"Two {XSS}")
    await page.fill("#notes", "## Changes\n\n- **faster** " + XSS)
    await page.click("#release-form button")
    await expect(page.locator("#release-title")).to_contain_text(f"Two {XSS}")
    await expect(page.locator("#release-notes strong")).to_have_text("faster")
    await no_xss(page)
    release_id = page.url.rsplit("/", 1)[-1]
    tags = {t["name"]: t for t in api(server, "GET", f"{base}/repo/tags", token=token)["items"]}
    assert tags["v2.0"]["sha"] == branches["feature"]["commit"]["sha"]
    upload_asset(server, token, release_id, "notes.txt", b"release notes file\n")
    await page.reload()
    asset = page.locator("#asset-list a", has_text="notes.txt")
    got_asset = await page.request.get(server.base_url + await asset.get_attribute("href"))
    assert await got_asset.text() == "release notes file\n"
    await page.click("#release-tag")
    await expect(page.locator("#file-list")).to_contain_text("app.txt")
    await page.go_back()
    await page.click("#edit-release summary")
    await page.fill("#rel-title", "Version two")
    await page.check("#edit-release input[name=prerelease]")
    await page.click("#release-save")
    await expect(page.locator("#release-title")).to_contain_text("Version two")
    await expect(page.locator("#release-title")).to_contain_text("pre-release")
    await shots(page, "c08-release")
    await fits(page, "c08-release", shots)
    await page.goto(ui + "/releases")
    await expect(page.locator("#release-list")).to_contain_text("Version two")
    await expect(page.locator("#release-list strong").first).to_have_text("Version two")
    await shots(page, "c09-releases")
    await fits(page, "c09-releases", shots)
    await page.goto(ui + "/tags")
    await expect(page.locator("#tag-list a.tag")).to_have_text("release")

    # the viewer: reads everything; every action is absent with the permission named, a post is refused
    viewer = await browser.new_context(viewport={"width": 1280, "height": 900})
    viewer.set_default_timeout(TIMEOUT_MS)
    vpage = await viewer.new_page()
    await sign_in(vpage, server, VIEWER)
    for path, absent in (("/branches", "#branch-form"), ("/tags", "#tag-form"), ("/releases", "#new-release"),
                         (f"/releases/{release_id}", "#release-edit-form"), (f"/issues/{data['issue']}", "#meta-form"),
                         (f"/merge-requests/{mr_number}", "#meta-form"), ("/compare/main...feature", "#open-mr")):
        await vpage.goto(ui + path)
        assert await vpage.locator(absent).count() == 0, path
        await expect(vpage.locator(".denied").first).to_contain_text("project:write")
        await no_xss(vpage)
    await expect(vpage.locator("#compare-commits")).to_contain_text("rework the app")
    await shots(vpage, "c10-viewer-compare")
    await vpage.goto(ui + f"/releases/{release_id}")
    await expect(vpage.locator("#release-notes strong")).to_have_text("faster")
    await shots(vpage, "c11-viewer-release")
    csrf = next(c["value"] for c in await viewer.cookies() if c["name"] == "corral_csrf")
    for path, form in (("/tags", {"name": "v9"}), ("/branches/delete", {"name": "feature"}),
                       (f"/releases/{release_id}/delete", {}), (f"/issues/{data['issue']}/meta", {"label": "ui"}),
                       (f"/merge-requests/{mr_number}/edit", {"title": "mine"})):
        refused = await vpage.request.post(ui + path, form={"csrf_token": csrf, **form},
                                           headers={"Accept": "text/html"})
        assert refused.status == 403, path
        assert "project:write" in await refused.text()
    response = await vpage.goto(ui + "/releases/new")
    assert response is not None and response.status == 403
    await viewer.close()

    # without JavaScript the pages read the same (forms are plain posts, details open natively)
    nojs = await browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    nojs.set_default_timeout(TIMEOUT_MS)
    npage = await nojs.new_page()
    await sign_in(npage, server, ADMIN)
    await npage.goto(ui + "/compare/main...feature?view=split")
    await expect(npage.locator("#compare-commits")).to_contain_text("rework the app")
    await npage.goto(ui + "/docs/guide.md")
    await expect(npage.locator("#doc h1")).to_have_text("Guide")
    await npage.goto(ui + f"/issues/{data['other']}")
    await npage.click("#edit-meta summary")
    await npage.check("#meta-form input[name=label][value=ui]")
    await npage.click("#meta-save")
    await expect(npage.locator("#issue-labels")).to_have_text("ui")
    await nojs.close()

    # the release is deleted (confirmed); its tag stays
    await page.goto(ui + f"/releases/{release_id}")
    await page.click("#release-delete button")
    await page.wait_for_url(ui + "/releases")
    assert "Version two" not in await page.inner_text("main")
    assert api(server, "GET", f"{base}/releases", token=token)["items"] == []
    assert "v2.0" in {t["name"] for t in api(server, "GET", f"{base}/repo/tags", token=token)["items"]}
    assert len(confirms) == 3, confirms
    await context.close()
    assert all(p.stat().st_size > 0 for p in shots.taken)
