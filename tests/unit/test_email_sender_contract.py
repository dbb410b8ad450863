"""The recording email sender passes the EmailSender contract."""

from __future__ import annotations

from typing import Any

import pytest

from corral.contracts.email_sender import EmailSenderContract, SentMail
from corral.fakes.notify import RecordingEmailSender


class TestRecordingEmailSender(EmailSenderContract):
    @pytest.fixture
    def email_sender(self) -> RecordingEmailSender:
        return RecordingEmailSender()

    @pytest.fixture
    def refusing_email_sender(self) -> RecordingEmailSender:
        return RecordingEmailSender(unavailable=True)

    async def delivered(self, sender: Any) -> list[SentMail]:
        return [SentMail(to, m.subject, m.text, m.html, headers) for to, m, headers in sender.sent]
