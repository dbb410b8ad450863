"""SmtpEmailSender passes the EmailSender contract against the aiosmtpd sink."""

from __future__ import annotations

from typing import Any

import pytest

from corral.adapters.smtp import SmtpEmailSender
from corral.contracts.email_sender import EmailSenderContract, SentMail
from corral.core.notify.model import RenderedMessage
from tests.servicekit import SmtpSink
from tests.servicekit.process import free_port

pytestmark = pytest.mark.integration


class TestSmtpEmailSender(EmailSenderContract):
    @pytest.fixture
    def email_sender(self, smtp_sink: SmtpSink) -> SmtpEmailSender:
        self.sink = smtp_sink
        return SmtpEmailSender(host=smtp_sink.host, port=smtp_sink.port, sender="Corral <corral@example.org>",
                               security="none", timeout=5)

    @pytest.fixture
    def refusing_email_sender(self, smtp_sink: SmtpSink) -> SmtpEmailSender:
        self.sink = smtp_sink
        return SmtpEmailSender(host="127.0.0.1", port=free_port(), sender="corral@example.org", security="none",
                               timeout=5)  # nothing listens there

    async def delivered(self, sender: Any) -> list[SentMail]:
        def read(part: Any) -> str:  # SMTP carries CRLF line ends; a mail reader shows plain lines
            return str(part.get_content()).replace("\r\n", "\n") if part is not None else ""

        mails = []
        for msg in list(self.sink.messages):
            assert msg.get_content_type() in ("multipart/alternative", "text/plain")
            text = msg.get_body(("plain",))
            html = msg.get_body(("html",))
            assert text is not None
            assert msg.rcpt_tos == [str(msg["To"])]
            mails.append(SentMail(
                to=str(msg["To"]), subject=str(msg["Subject"]), text=read(text), html=read(html),
                headers={k: str(v) for k, v in msg.items()},
            ))
        return mails


async def test_the_mail_names_its_sender_and_has_a_message_id(smtp_sink: SmtpSink) -> None:
    sender = SmtpEmailSender(host=smtp_sink.host, port=smtp_sink.port, sender="corral@example.org",
                             security="none")
    await sender.send("e@example.org", RenderedMessage("s", "t", "<p>t</p>"))
    [msg] = smtp_sink.messages
    assert msg.mail_from == "corral@example.org" and msg["From"] == "corral@example.org"
    assert str(msg["Message-ID"]).endswith("@example.org>")
