"""RecordingWebhookTransport: a WebhookTransport that records every POST and answers from a script."""

from __future__ import annotations

import ipaddress
import urllib.parse

import attrs

from corral.core.errors import InvalidInput, Unavailable
from corral.core.projects.ports import HttpAnswer

__all__ = ["RecordedPost", "RecordingWebhookTransport"]


@attrs.frozen
class RecordedPost:
    url: str
    body: bytes
    headers: dict[str, str]


@attrs.define
class RecordingWebhookTransport:
    """Answers each POST with the next scripted status (default 200); 0 in the script means a network error.

    Literal private/loopback IP hosts are refused unless ``allow_private`` (host names are not resolved).
    """

    script: list[int] = attrs.field(factory=list)
    posts: list[RecordedPost] = attrs.field(factory=list)
    allow_private: bool = False

    def check_target(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("url must be an http(s) URL with a host", field="url")
        try:
            address = ipaddress.ip_address(parsed.hostname)
        except ValueError:
            return
        if not self.allow_private and (address.is_private or address.is_loopback or address.is_link_local):
            raise InvalidInput("url points to a private, loopback or link-local address", field="url")

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        self.check_target(url)
        self.posts.append(RecordedPost(url, body, dict(headers)))
        status = self.script.pop(0) if self.script else 200
        if status == 0:
            raise Unavailable("connection refused")
        return HttpAnswer(status=status, duration_ms=1, body_excerpt="ok" if status < 300 else "nope")
