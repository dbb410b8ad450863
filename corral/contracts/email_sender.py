"""EmailSenderContract: what every EmailSender does.

Needs fixtures ``email_sender`` (a sender whose relay accepts everything) and ``refusing_email_sender`` (one
whose relay cannot be reached or refuses the mail), and a method ``async delivered(sender) -> list[SentMail]``
on the test class: what reached the relay, in order, as the recipient would read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from corral.core.errors import Unavailable
from corral.core.notify.model import RenderedMessage

__all__ = ["EmailSenderContract", "SentMail"]


@dataclass(frozen=True)
class SentMail:
    to: str
    subject: str
    text: str
    html: str  # "" when the mail has no HTML part
    headers: dict[str, str] = field(default_factory=dict)


MESSAGE = RenderedMessage(
    subject="[team/app] Issue #7 opened: Crash on ünïcode ✓",
    text="Alice opened issue #7.\n\nSee https://corral.example/team/app/issues/7",
    html="<p>Alice opened <a href=\"https://corral.example/team/app/issues/7\">issue #7</a> ✓</p>",
)


class EmailSenderContract:
    async def delivered(self, sender: Any) -> list[SentMail]:
        raise NotImplementedError

    async def test_a_mail_reaches_its_recipient_with_text_html_and_headers(self, email_sender: Any) -> None:
        headers = {"X-Corral-Event": "issue.opened", "List-Id": "team/app <app.team.corral.example>"}
        await email_sender.send("bob@example.org", MESSAGE, headers=headers)
        [mail] = await self.delivered(email_sender)
        assert mail.to == "bob@example.org"
        assert mail.subject == MESSAGE.subject
        assert mail.text.rstrip("\n") == MESSAGE.text
        assert mail.html.rstrip("\n") == MESSAGE.html
        assert {k: mail.headers.get(k) for k in headers} == headers

    async def test_each_send_is_one_mail_to_one_recipient_in_order(self, email_sender: Any) -> None:
        await email_sender.send("a@example.org", RenderedMessage("first", "one", "<p>one</p>"))
        await email_sender.send("b@example.org", RenderedMessage("second", "two", "<p>two</p>"), headers=None)
        mails = await self.delivered(email_sender)
        assert [(m.to, m.subject, m.text.rstrip("\n")) for m in mails] == [
            ("a@example.org", "first", "one"), ("b@example.org", "second", "two")]
        assert "X-Corral-Event" not in mails[1].headers

    async def test_a_mail_without_html_is_text_only(self, email_sender: Any) -> None:
        await email_sender.send("c@example.org", RenderedMessage("plain", "just words", ""))
        [mail] = await self.delivered(email_sender)
        assert (mail.text.rstrip("\n"), mail.html) == ("just words", "")

    async def test_a_relay_failure_is_unavailable_and_delivers_nothing(self, refusing_email_sender: Any) -> None:
        with pytest.raises(Unavailable) as failed:
            await refusing_email_sender.send("d@example.org", MESSAGE)
        assert str(failed.value)
        assert await self.delivered(refusing_email_sender) == []
