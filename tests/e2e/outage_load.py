"""Load against a running Corral while its dependencies die: API writes and OTLP ingest in a loop.

Every answer must be a success or a clean 503 with Retry-After (never another 5xx, never a hang); what was
acknowledged is remembered and must be there afterwards. Used by the embedded e2e tests and the
external-service integration tests of issue 19.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import attrs

from tests.e2e.corral_process import admin_env

ADMIN = ("root", "outage-password-123456")
ADMIN_ENV = {
    **admin_env(ADMIN),
    "CORRAL_OBSERVE_SELF": "false",
}
SERVICE = "outage-load"
REQUEST_TIMEOUT = 30.0  # longer than any bound of Corral's: a request still open then is a hang
PROJECT = "outages"


async def admin_token(base: str, scopes: list[str] | None = None) -> tuple[str, str]:
    """A token of the bootstrap admin (every permission unless ``scopes``): (token, token id)."""
    jar = aiohttp.CookieJar(unsafe=True)  # the session cookie of 127.0.0.1
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20), cookie_jar=jar) as http:
        async with http.post(f"{base}/api/v1/auth/login", json={"name": ADMIN[0], "password": ADMIN[1]}) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
        if scopes is None:
            async with http.get(f"{base}/api/v1/permissions") as resp:
                scopes = [p["name"] for p in (await resp.json())["items"]]
        async with http.post(f"{base}/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                             json={"name": f"t{time.monotonic_ns()}", "scopes": scopes}) as resp:
            assert resp.status == 201, await resp.text()
            created = await resp.json()
    return created["token"], created["id"]


def _otlp_logs(message: str) -> dict[str, Any]:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(time.time_ns()), "severityText": "INFO", "body": {"stringValue": message},
        }]}],
    }]}


@attrs.define
class Load:
    """Writes an issue and an OTLP log record per round until stopped; see the module docstring."""

    base: str
    token: str
    issues: list[str] = attrs.Factory(list)  # titles of acknowledged issues
    logs: list[str] = attrs.Factory(list)  # messages of acknowledged log records
    statuses: Counter[int] = attrs.Factory(Counter)
    bad: list[str] = attrs.Factory(list)  # answers that are neither a success nor a clean 503
    last_ok: dict[str, float] = attrs.Factory(dict)  # kind -> monotonic time of the last success
    _stop: asyncio.Event = attrs.Factory(asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def create_project(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http, http.post(
            f"{self.base}/api/v1/projects", headers=self.headers,
            json={"name": PROJECT, "visibility": "private", "default_branch": "main", "description": "load"},
        ) as resp:
            assert resp.status == 201, await resp.text()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, REQUEST_TIMEOUT + 10)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                await asyncio.gather(self._issue(http, n), self._log(http, n))
                await asyncio.sleep(0.05)

    async def _call(self, http: aiohttp.ClientSession, kind: str, url: str, body: Any, ok: int) -> bool:
        try:
            async with http.post(url, json=body, headers=self.headers) as resp:
                self.statuses[resp.status] += 1
                if resp.status == ok:
                    self.last_ok[kind] = time.monotonic()
                    return True
                text = await resp.text()
                if resp.status != 503 or not resp.headers.get("Retry-After"):
                    self.bad.append(f"{kind}: {resp.status} {dict(resp.headers)} {text[:500]}")
                return False
        except TimeoutError:
            self.bad.append(f"{kind}: no answer within {REQUEST_TIMEOUT} s")
        except aiohttp.ClientError as exc:
            self.bad.append(f"{kind}: {type(exc).__name__}: {exc}")
        return False

    async def _issue(self, http: aiohttp.ClientSession, n: int) -> None:
        title = f"issue {n}"
        if await self._call(http, "issue", f"{self.base}/api/v1/projects/{ADMIN[0]}/{PROJECT}/issues",
                            {"title": title}, 201):
            self.issues.append(title)

    async def _log(self, http: aiohttp.ClientSession, n: int) -> None:
        message = f"log {n}"
        if await self._call(http, "otlp", f"{self.base}/v1/logs", _otlp_logs(message), 200):
            self.logs.append(message)

    async def recovered_since(self, moment: float, timeout: float) -> float:
        """Seconds from ``moment`` until both kinds of write succeeded again (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.last_ok.get(kind, 0) > moment for kind in ("issue", "otlp")):
                return max(self.last_ok["issue"], self.last_ok["otlp"]) - moment
            await asyncio.sleep(0.05)
        raise AssertionError(f"writes did not resume within {timeout} s: {self.statuses}, {self.bad[-5:]}")

    async def verify(self) -> None:
        """Every acknowledged issue and log record is stored."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=self.headers) as http:
            titles = await _collect(http, f"{self.base}/api/v1/projects/{ADMIN[0]}/{PROJECT}/issues?limit=100",
                                    "title")
            messages = await _collect(http, f"{self.base}/api/v1/observe/logs?service={SERVICE}&limit=500"
                                      "&since=1h", "message")
        missing_issues = set(self.issues) - titles
        missing_logs = set(self.logs) - messages
        assert not missing_issues, f"acknowledged issues lost: {sorted(missing_issues)[:20]}"
        assert not missing_logs, f"acknowledged log records lost: {sorted(missing_logs)[:20]}"


async def _collect(http: aiohttp.ClientSession, url: str, field: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    for _ in range(1000):
        async with http.get(url + (f"&cursor={cursor}" if cursor else "")) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        found.update(str(item.get(field)) for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found
    raise AssertionError("too many pages")


async def wait_for_status(http: aiohttp.ClientSession, url: str, status: int, timeout: float) -> dict[str, Any]:
    """Poll ``url`` until it answers ``status``; its JSON body."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                last = (resp.status, await resp.text())
                if resp.status == status:
                    body: dict[str, Any] = await resp.json()
                    return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s; last: {last}")
