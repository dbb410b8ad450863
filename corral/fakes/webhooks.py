"""RecordingWebhookTransport: a WebhookTransport that records every POST and answers from a script."""

from __future__ import annotations

import attrs

from corral.core.errors import InvalidInput, Unavailable
from corral.core.outbound import NOT_PUBLIC, HostResolver, check_url, is_public_address
from corral.core.projects.ports import HttpAnswer

__all__ = ["PUBLIC_TEST_ADDRESS", "RecordedPost", "RecordingWebhookTransport", "StaticResolver"]

# What unknown names resolve to in the fake: a public address nothing ever connects to.
PUBLIC_TEST_ADDRESS = "93.184.215.14"


@attrs.frozen
class RecordedPost:
    url: str
    body: bytes
    headers: dict[str, str]
    address: str = ""  # the (checked) address the post would have connected to


@attrs.define
class StaticResolver:
    """Resolves names from a table: each name to its answers in turn (the last one repeats); names not in it
    resolve to PUBLIC_TEST_ADDRESS. Records every name asked."""

    answers: dict[str, list[list[str]]] = attrs.field(factory=dict)
    asked: list[str] = attrs.field(factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        turns = self.answers.get(host)
        if not turns:
            return [PUBLIC_TEST_ADDRESS]
        return list(turns.pop(0) if len(turns) > 1 else turns[0])


@attrs.define
class RecordingWebhookTransport:
    """Answers each POST with the next scripted status (default 200); 0 in the script means a network error.

    The URL rules are corral.core.outbound's, as in the real transport: host names are resolved once through
    ``resolver`` and every address checked (unless ``allow_private``); the post is recorded with the address
    it would have connected to.
    """

    script: list[int] = attrs.field(factory=list)
    posts: list[RecordedPost] = attrs.field(factory=list)
    allow_private: bool = False
    resolver: HostResolver = attrs.field(factory=StaticResolver)

    def check_target(self, url: str, field: str = "url") -> None:
        check_url(url, field=field, allow_private=self.allow_private)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        try:
            target = check_url(url, allow_private=self.allow_private)
        except InvalidInput as exc:
            raise InvalidInput(f"refused: {exc.message}", field="url") from None
        if target.address is not None:
            address = str(target.address)
        else:
            addresses = await self.resolver(target.host, target.port)
            if not addresses:
                raise Unavailable("name resolution failed")
            if not self.allow_private and not all(is_public_address(a) for a in addresses):
                raise Unavailable(NOT_PUBLIC)
            address = addresses[0]
        self.posts.append(RecordedPost(url, body, dict(headers), address))
        status = self.script.pop(0) if self.script else 200
        if status == 0:
            raise Unavailable("connection failed")
        return HttpAnswer(status=status, duration_ms=1, body_excerpt="ok" if status < 300 else "nope")
