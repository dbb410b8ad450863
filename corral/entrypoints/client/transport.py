"""The client's HTTP transport (a port: tests pass their own) and its stdlib implementation."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Protocol

import attrs

__all__ = ["HttpResponse", "Transport", "Unreachable", "UrllibTransport"]


class Unreachable(Exception):
    """The server could not be reached (connection refused, DNS, timeout)."""


@attrs.frozen
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Transport(Protocol):
    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        """One request; every status is a response (never raises for 4xx/5xx); Unreachable when no answer."""
        ...

    def stream(self, method: str, url: str, headers: dict[str, str]) -> tuple[HttpResponse, Iterator[bytes]]:
        """A request whose success body is read line by line as it arrives (SSE): the status and headers (with the
        whole body when it is not a success) and an iterator of lines."""
        ...


class UrllibTransport:
    """urllib: no dependency, fast start (the CLI is run once per command)."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout

    def _open(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> object:
        if not url.startswith(("http://", "https://")):
            raise Unreachable(f"not an http(s) URL: {url}")
        req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 (checked above)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            return opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach {url.split('?', 1)[0]}: {reason}") from None

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        resp = self._open(method, url, headers, body)
        try:
            data = resp.read()  # type: ignore[attr-defined]
        except OSError as exc:
            raise Unreachable(f"the connection to {url.split('?', 1)[0]} broke: {exc}") from None
        finally:
            resp.close()  # type: ignore[attr-defined]
        return HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data)  # type: ignore[attr-defined]

    def stream(self, method: str, url: str, headers: dict[str, str]) -> tuple[HttpResponse, Iterator[bytes]]:
        resp = self._open(method, url, headers, None)
        status = resp.status  # type: ignore[attr-defined]
        heads = {k.lower(): v for k, v in resp.headers.items()}  # type: ignore[attr-defined]
        if not 200 <= status < 300:
            try:
                data = resp.read()  # type: ignore[attr-defined]
            finally:
                resp.close()  # type: ignore[attr-defined]
            return HttpResponse(status, heads, data), iter(())

        def lines() -> Iterator[bytes]:
            try:
                while True:
                    line = resp.readline()  # type: ignore[attr-defined]
                    if not line:
                        return
                    yield line
            finally:
                resp.close()  # type: ignore[attr-defined]

        return HttpResponse(status, heads, b""), lines()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A project rename answers 301/308 to the new path: followed for GET, reported otherwise (urllib would
    resend a POST as a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() in ("GET", "HEAD"):
            return super().redirect_request(req, fp, code, msg, headers, newurl)
        return None
