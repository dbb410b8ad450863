"""The README screenshots (issue #18): a real ``corral serve`` on the embedded default, seeded through the API,
git and OTLP with a small, clean demo (``alice/shop``: a Python repository, a merge request with a review, issues,
a passing pipeline, a deployment, an agent session, logs, a trace and metrics), then each main page captured by
Debian's Chromium (Playwright) at 1280x800 into ``docs/screenshots/<name>.png`` (a full page is cut at 1600 px),
and the project home at phone width (390 px).

    ./dev screenshots [--keep]     (--keep: leave the server running until Enter, to look around)

A dev tool, not a test: pytest does not collect it (no ``test_`` prefix)."""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.corral_process import CorralProcess  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars"]
ALICE = {"name": "alice", "password": "alice-demo-password-2026", "email": "alice@example.com"}
BOB = {"name": "bob", "password": "bob-demo-password-2026", "email": "bob@example.com"}
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
MAX_HEIGHT = 1600
MAX_BYTES = 250_000
P = "alice/shop"
API = f"/api/v1/projects/{P}"

README = """\
# Shop

A small online shop: a cart, prices in cents, and discount codes.

## Getting started

```sh
python -m venv .venv && . .venv/bin/activate
pip install -e .
python -m unittest discover -s tests
```

## Layout

| Path | What |
|------|------|
| `src/shop/cart.py` | the cart and its totals |
| `src/shop/discounts.py` | discount codes |
| `tests/` | unit tests |
| `docs/` | the user guide |

## Contributing

Open a merge request against `main`; the pipeline runs the tests on every push.
"""
CART = '''\
"""The shopping cart: lines of products, quantities and totals in cents."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    sku: str
    price_cents: int
    quantity: int = 1

    @property
    def total_cents(self) -> int:
        return self.price_cents * self.quantity


@dataclass
class Cart:
    lines: dict[str, Line] = field(default_factory=dict)

    def add(self, sku: str, price_cents: int, quantity: int = 1) -> None:
        """Add a product, or more of one already in the cart."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        if sku in self.lines:
            self.lines[sku].quantity += quantity
        else:
            self.lines[sku] = Line(sku, price_cents, quantity)

    def remove(self, sku: str) -> None:
        self.lines.pop(sku, None)

    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines.values())
'''
DISCOUNTS = '''\
"""Discount codes: a percentage off the cart's total."""

CODES = {"WELCOME10": 10, "SPRING20": 20}


def apply(total_cents: int, code: str) -> int:
    """The total after the code's discount (unknown codes change nothing)."""
    percent = CODES.get(code.upper(), 0)
    return total_cents - total_cents * percent // 100
'''
DISCOUNTS_V2 = DISCOUNTS.replace(
    'CODES = {"WELCOME10": 10, "SPRING20": 20}',
    'CODES = {"WELCOME10": 10, "SPRING20": 20, "SUMMER15": 15}\nMAX_PERCENT = 50',
).replace(
    "    percent = CODES.get(code.upper(), 0)\n",
    "    percent = min(CODES.get(code.strip().upper(), 0), MAX_PERCENT)\n",
)
TESTS = '''\
import unittest

from shop.cart import Cart
from shop.discounts import apply


class CartTest(unittest.TestCase):
    def test_total_counts_quantities(self) -> None:
        cart = Cart()
        cart.add("mug", price_cents=1200, quantity=2)
        cart.add("tea", price_cents=650)
        self.assertEqual(cart.total_cents(), 3050)

    def test_adding_again_increases_the_quantity(self) -> None:
        cart = Cart()
        cart.add("mug", price_cents=1200)
        cart.add("mug", price_cents=1200)
        self.assertEqual(cart.lines["mug"].quantity, 2)


class DiscountTest(unittest.TestCase):
    def test_known_code(self) -> None:
        self.assertEqual(apply(10_000, "welcome10"), 9_000)

    def test_unknown_code(self) -> None:
        self.assertEqual(apply(10_000, "NOPE"), 10_000)
'''
DOCS = """\
# Shop guide

## Carts

A cart holds lines of products; `Cart.total_cents()` is the sum of price times quantity.

## Discount codes

Codes take a percentage off the total: `WELCOME10` (10 %) and `SPRING20` (20 %).
"""
PYPROJECT = """\
[project]
name = "shop"
version = "0.3.0"
requires-python = ">=3.11"

[tool.setuptools.packages.find]
where = ["src"]
"""
PIPELINE = """\
steps:
  lint:
    image: python:3.11-slim
    commands:
      - python3 -m compileall -q src tests
      - echo "syntax ok"
  test:
    image: python:3.11-slim
    depends_on: [lint]
    commands:
      - PYTHONPATH=src python3 -m unittest discover -s tests -v
"""
DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: "{{ image_ref }}"
          ports: [{containerPort: 8000}]
"""


# ---- HTTP and git ---------------------------------------------------------------------------------------------
def api(server: CorralProcess, method: str, path: str, body: object = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.base_url + path, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=20) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def token_of(server: CorralProcess, who: dict[str, str], project: str | None = None,
             scopes: list[str] | None = None) -> str:
    """An API token of ``who`` (sign in, then POST /api/v1/tokens with the CSRF token): ``scopes`` in ``project``,
    by default everything ``who`` holds everywhere."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(method: str, path: str, body: object = None, csrf: str = "") -> Any:
        req = urllib.request.Request(server.base_url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
        with opener.open(req, timeout=20) as resp:
            return json.loads(resp.read())

    csrf = call("POST", "/api/v1/auth/login", {"name": who["name"], "password": who["password"]})["csrf_token"]
    if scopes is None:
        scopes = call("GET", "/api/v1/me")["permissions"]
    return str(call("POST", "/api/v1/tokens", {"name": "demo seed", "scopes": scopes, "project": project},
                    csrf)["token"])


def otlp(server: CorralProcess, path: str, body: dict[str, Any], token: str) -> None:
    req = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        if resp.status != 200:
            raise RuntimeError(f"OTLP {path}: {resp.status}")


def git(cwd: Path, *args: str, who: str = "Alice Martin <alice@example.com>") -> str:
    name, email = who.rstrip(">").split(" <")
    out = subprocess.run(["git", "-c", f"user.name={name}", "-c", f"user.email={email}", *args], cwd=cwd,
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout


def until(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


# ---- the demo -------------------------------------------------------------------------------------------------
def seed(server: CorralProcess, tmp: Path) -> dict[str, Any]:
    token = token_of(server, ALICE)
    api(server, "POST", "/api/v1/users", {k: BOB[k] for k in ("name", "email", "password")}, token)
    api(server, "POST", "/api/v1/projects", {"name": "shop", "description": "A small online shop: cart, prices and "
                                                                            "discount codes"}, token)
    api(server, "POST", "/api/v1/projects", {"name": "ops", "description": "Deployment manifests"}, token)
    api(server, "POST", "/api/v1/role-bindings", {"user": BOB["name"], "role": "developer", "project": P}, token)
    bob = token_of(server, BOB, P, ["project:read", "project:write"])
    remote = server.base_url.replace("http://", f"http://alice:{token}@")

    ops = tmp / "ops"
    ops.mkdir(parents=True)
    git(ops, "init", "-q", "-b", "main")
    write(ops, {"apps/shop/deployment.yaml": DEPLOYMENT_YAML})
    git(ops, "add", "-A")
    git(ops, "commit", "-qm", "Add the shop deployment")
    git(ops, "push", "-q", f"{remote}/alice/ops.git", "main")

    work = tmp / "shop"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    write(work, {"README.md": README.split("## Layout")[0], "pyproject.toml": PYPROJECT,
                 "src/shop/__init__.py": '"""A small online shop."""\n', "src/shop/cart.py": CART})
    git(work, "add", "-A")
    git(work, "commit", "-qm", "Start the shop: cart with totals")
    write(work, {"src/shop/discounts.py": DISCOUNTS, "tests/test_cart.py": TESTS, "README.md": README})
    git(work, "add", "-A")
    git(work, "commit", "-qm", "Add discount codes and unit tests")
    write(work, {"docs/index.md": DOCS, ".woodpecker.yaml": PIPELINE})
    git(work, "add", "-A")
    git(work, "commit", "-qm", "Add the user guide and the CI pipeline")
    git(work, "tag", "v0.3.0")
    git(work, "push", "-q", f"{remote}/{P}.git", "main", "v0.3.0")
    git(work, "checkout", "-qb", "fix/discount-codes")
    write(work, {"src/shop/discounts.py": DISCOUNTS_V2})
    git(work, "commit", "-qam", "Trim discount codes and cap discounts at 50 %", who="Bob Chen <bob@example.com>")
    with (work / "tests" / "test_cart.py").open("a") as fh:
        fh.write('\n    def test_code_is_trimmed(self) -> None:\n'
                 '        self.assertEqual(apply(10_000, " welcome10 "), 9_000)\n')
    git(work, "commit", "-qam", "Test that codes are trimmed", who="Bob Chen <bob@example.com>")
    git(work, "push", "-q", f"{remote}/{P}.git", "fix/discount-codes")

    base = API
    # the agent and the pipelines first, so that the people's work is on top of the dashboard's "What changed"
    session = api(server, "POST", f"{base}/agent-sessions", {
        "prompt": "Add a clear() method to Cart that empties it, with a unit test.", "provider": "claude-code",
        "permissions": ["project:read", "project:write"], "max_turns": 20, "max_cost_usd": 1.0,
        "timeout_seconds": 300, "branch": None, "open_merge_request": False}, token)["id"]
    until("the agent session to end", lambda: api(server, "GET", f"/api/v1/agent-sessions/{session}",
                                                  token=token)["status"] in ("completed", "failed", "stopped"))
    pipeline = until("the pipeline on main to pass", lambda: next(
        (p for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]
         if p["ref"].endswith("main") and p["status"] in ("success", "failure", "error")), None))
    if pipeline["status"] != "success":
        raise RuntimeError(f"the demo pipeline did not pass: {pipeline}")
    until("every pipeline (main, the branch, the agent's) to finish", lambda: all(
        p["status"] in ("success", "failure", "error", "cancelled")
        for p in api(server, "GET", f"{base}/pipelines", token=token)["items"]))

    # the deployment: an ops repository, then two desired states of staging (no cluster: rendered, not applied)
    api(server, "POST", "/api/v1/ops-repos", {"name": "ops", "project": "alice/ops", "branch": "main", "path": ""},
        token)
    for image in ("registry.example.com/shop:0.2.1", "registry.example.com/shop:0.3.0"):
        api(server, "PUT", f"{base}/deployments/staging", {"ops_repo": "ops", "app_path": "apps/shop",
                                                           "image_ref": image, "namespace": "shop"}, token)

    for name, color, description in (("bug", "#d73a4a", "Something is wrong"),
                                     ("enhancement", "#1d76db", "A new feature or an improvement"),
                                     ("checkout", "#0e8a16", "The checkout flow")):
        api(server, "POST", f"{base}/labels", {"name": name, "color": color, "description": description}, token)
    bug = api(server, "POST", f"{base}/issues", {
        "title": "Discount codes with spaces are ignored",
        "body": "Entering ` welcome10` (with a leading space) at checkout gives no discount.\n\n"
                "**Expected:** the code is trimmed and 10 % is taken off.", "labels": ["bug", "checkout"]}, bob)
    api(server, "POST", f"{base}/issues/{bug['number']}/comments",
        {"body": "Reproduced on `main`; `apply()` should strip the code before the lookup."}, token)
    feature = api(server, "POST", f"{base}/issues", {
        "title": "Cap discounts at 50 %", "body": "No code should take more than half off an order.",
        "labels": ["enhancement"]}, token)

    before = len(api(server, "GET", f"{base}/pipelines", token=token)["items"])  # opening the MR starts one
    mr = api(server, "POST", f"{base}/merge-requests", {
        "source_branch": "fix/discount-codes", "title": "Trim discount codes and cap discounts at 50 %",
        "body": f"Fixes #{bug['number']} and #{feature['number']}.\n\n- strip spaces around a code\n"
                "- no code takes more than 50 % off\n- adds `SUMMER15`", "labels": ["bug", "checkout"],
        "reviewers": ["alice"]}, bob)["number"]
    api(server, "POST", f"{base}/merge-requests/{mr}/reviews", {
        "verdict": "approve", "body": "Looks good, thanks! The cap reads well as a constant."}, token)
    def mr_pipeline_done() -> bool:
        items = api(server, "GET", f"{base}/pipelines", token=token)["items"]
        return len(items) > before and all(p["status"] in ("success", "failure", "error", "cancelled") for p in items)

    until("the merge request's pipeline to finish", mr_pipeline_done)
    api(server, "POST", f"{base}/merge-requests/{mr}/comments", {
        "body": "Should `SUMMER15` wait for the June release? Fine either way."}, token)
    api(server, "POST", f"{base}/merge-requests/{mr}/comments", {
        "body": "Marketing wants it live now, so keeping it."}, bob)

    trace = telemetry(server, token)
    until("the logs to be searchable", lambda: api(server, "GET", f"/api/v1/observe/logs?trace_id={trace}",
                                                   token=token)["items"], timeout=60)
    until("the metric to be queryable", lambda: api(
        server, "GET", "/api/v1/observe/metrics?name=http_request_duration_ms&since=1h&step=60",
        token=token)["series"], timeout=60)
    return {"mr": mr, "pipeline": pipeline["number"], "session": session, "trace": trace}


def telemetry(server: CorralProcess, token: str) -> str:
    """A checkout trace of six spans, the service's logs of the last minutes, an hour of latency metrics."""
    trace = uuid.uuid4().hex
    now = time.time_ns()
    ms = 1_000_000
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "shop-api"}},
                               {"key": "service.version", "value": {"stringValue": "0.3.0"}},
                               {"key": "corral.project", "value": {"stringValue": P}}]}

    def attr(key: str, value: str) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value}}

    def span(sid: str, parent: str | None, name: str, kind: int, start: int, end: int, *attrs: dict[str, Any],
             error: bool = False) -> dict[str, Any]:
        s: dict[str, Any] = {"traceId": trace, "spanId": sid, "name": name, "kind": kind,
                             "startTimeUnixNano": str(now - 300 * ms + start * ms),
                             "endTimeUnixNano": str(now - 300 * ms + end * ms), "attributes": list(attrs)}
        if parent:
            s["parentSpanId"] = parent
        if error:
            s["status"] = {"code": 2, "message": "card declined"}
        return s

    spans = [
        span("a000000000000001", None, "POST /checkout", 2, 0, 248, attr("http.route", "/checkout"),
             attr("http.request.method", "POST")),
        span("a000000000000002", "a000000000000001", "load cart", 1, 4, 31),
        span("a000000000000003", "a000000000000002", "SELECT cart_lines", 3, 6, 27,
             attr("db.statement", "SELECT sku, price_cents, quantity FROM cart_lines WHERE cart_id = $1")),
        span("a000000000000004", "a000000000000001", "apply discount", 1, 33, 41, attr("shop.code", "WELCOME10")),
        span("a000000000000005", "a000000000000001", "POST payments.example.com/charge", 3, 45, 231,
             attr("http.request.method", "POST"), attr("server.address", "payments.example.com")),
        span("a000000000000006", "a000000000000001", "INSERT orders", 3, 233, 244,
             attr("db.statement", "INSERT INTO orders (cart_id, total_cents) VALUES ($1, $2)")),
    ]
    otlp(server, "/v1/traces", {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}, token)
    lines = [
        (290_000, 9, "INFO", "GET /products 200 in 12 ms", None),
        (250_000, 9, "INFO", "cart 8f3a: added mug x2", None),
        (180_000, 13, "WARN", "payments.example.com answered slowly (1.8 s)", None),
        (120_000, 9, "INFO", "GET /cart 200 in 9 ms", None),
        (60_000, 17, "ERROR", "checkout 41c2 failed: card declined by the payment provider", None),
        (300 - 41, 9, "INFO", "discount WELCOME10 applied: -1020 cents", "a000000000000004"),
        (300 - 244, 9, "INFO", "order 1042 placed: 9180 cents", "a000000000000006"),
        (30_000, 9, "INFO", "GET /health 200 in 1 ms", None),
    ]
    records = []
    for ago_ms, number, text, body, span_id in lines:
        r: dict[str, Any] = {"timeUnixNano": str(now - ago_ms * ms), "severityNumber": number,
                             "severityText": text, "body": {"stringValue": body}}
        if span_id:
            r.update(traceId=trace, spanId=span_id)
        records.append(r)
    otlp(server, "/v1/logs", {"resourceLogs": [{"resource": resource, "scopeLogs": [
        {"scope": {"name": "shop"}, "logRecords": records}]}]}, token)
    points = []
    jitter = random.Random(18)  # the same picture every run
    for i in range(60):
        for route, level in (("/checkout", 190.0), ("/cart", 22.0)):
            wave = level * jitter.uniform(-0.12, 0.18) + (level * 0.7 if route == "/checkout" and i in (41, 42) else 0)
            points.append({"timeUnixNano": str(now - (59 - i) * 60_000 * ms), "asDouble": round(level + wave, 1),
                           "attributes": [attr("http.route", route)]})
    otlp(server, "/v1/metrics", {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
        {"name": "http_request_duration_ms", "unit": "ms", "gauge": {"dataPoints": points}}]}]}]}, token)
    return trace


# ---- the pictures ---------------------------------------------------------------------------------------------
def shots(data: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(file name, URL, the element to wait for, the most pixels from the top kept)."""
    return [
        ("dashboard", "/ui/", "#your-projects", MAX_HEIGHT),
        ("project-home", f"/ui/{P}", "#readme h1", MAX_HEIGHT),
        ("file", f"/ui/{P}/src/main/src/shop/cart.py", "#code", MAX_HEIGHT),
        ("merge-request", f"/ui/{P}/merge-requests/{data['mr']}", "#files", MAX_HEIGHT),
        ("pipeline", f"/ui/{P}/pipelines/{data['pipeline']}?step=test&workflow=woodpecker", "#step-log",
         MAX_HEIGHT),
        ("deployment", f"/ui/{P}/deployments/staging", "#image-ref", MAX_HEIGHT),
        ("agent-session", f"/ui/agent-sessions/{data['session']}", "#session-prompt", MAX_HEIGHT),
        ("logs", f"/ui/observe/logs?project={P}&since=1h", "#log-table", MAX_HEIGHT),
        ("trace", f"/ui/observe/traces/{data['trace']}?project={P}", "#waterfall", MAX_HEIGHT),
        ("metrics", f"/ui/observe/metrics?project={P}&name=http_request_duration_ms&last=1h", "#metric-chart",
         MAX_HEIGHT),
        ("audit", "/ui/admin/audit", "#audit-table", WIDE["height"]),
    ]


# a click's worth of preparation before the picture: the agent's test run, unfolded
OPEN = {"agent-session": """() => { const run = [...document.querySelectorAll('details')]
    .find(d => d.textContent.includes('unittest discover')); if (run) run.open = true; }"""}


async def capture(server: CorralProcess, data: dict[str, Any]) -> list[Path]:
    from playwright.async_api import async_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.*"):
        if old.suffix in (".png", ".jpg"):
            old.unlink()
    written: list[Path] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for viewport, items in ((WIDE, shots(data)),
                                    (NARROW, [("project-home-phone", f"/ui/{P}", "#readme h1", MAX_HEIGHT)])):
                context = await browser.new_context(viewport=viewport, device_scale_factor=1, color_scheme="light")
                context.set_default_timeout(20_000)
                page = await context.new_page()
                await page.goto(server.base_url + "/ui/")
                await page.fill("input[name=name]", ALICE["name"])
                await page.fill("input[name=password]", ALICE["password"])
                await page.click("#login-form button[type=submit]")
                await page.wait_for_selector("#me-name")
                for name, url, marker, most in items:
                    await page.goto(server.base_url + url)
                    await page.wait_for_selector(marker)
                    await page.wait_for_load_state("networkidle")
                    if name in OPEN:
                        await page.evaluate(OPEN[name])
                    written.append(await snap(page, name, viewport, most))
                await context.close()
        finally:
            await browser.close()
    return written


async def snap(page: Any, name: str, viewport: dict[str, int], most: int) -> Path:
    """The page from the top, at most ``most`` pixels tall; a JPEG when the PNG is big."""
    height = int(await page.evaluate("() => document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": viewport["width"], "height": min(height, most)}
    path = OUT / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True, clip=clip)
    if path.stat().st_size > MAX_BYTES:
        path.unlink()
        path = OUT / f"{name}.jpg"
        await page.screenshot(path=str(path), full_page=True, clip=clip, type="jpeg", quality=80)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the server running until Enter")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="corral-shots-"))
    tmp.chmod(0o755)  # the embedded PostgreSQL may run as an unprivileged account that must traverse it
    data_dir = tmp / "data"
    data_dir.mkdir()
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'tools' / 'demo_agent.py'} \"$@\"\n")
    claude.chmod(0o755)
    server = CorralProcess.start(data_dir, {
        "CORRAL_DEPLOY_CLUSTER": "none", "CORRAL_AGENT_CLAUDE_COMMAND": str(claude),
        "CORRAL_OBSERVE_SELF": "false", "CORRAL_OTLP_DECODE_PROCESSES": "0",
        "CORRAL_VALIDATE_RESPONSES": "false",
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ALICE["name"], "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ALICE["password"],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": ALICE["email"],
    }, timeout=180)
    try:
        print(f"corral serve at {server.base_url} (log {server.log_path}); seeding the demo", flush=True)
        data = seed(server, tmp / "work")
        for path in asyncio.run(capture(server, data)):
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")
        if args.keep:
            input(f"{server.base_url} signed in as alice / {ALICE['password']}; Enter stops the server ")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
