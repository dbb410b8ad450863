"""Outbound mail through an SMTP relay (smtplib in a worker thread): STARTTLS, implicit TLS or plain, with AUTH."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

import attrs

from corral.core.errors import Unavailable
from corral.core.notify.model import RenderedMessage

__all__ = ["SmtpEmailSender"]


@attrs.define
class SmtpEmailSender:
    """EmailSender: multipart/alternative (text + HTML) mails to one recipient each."""

    host: str
    port: int
    sender: str
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout: float = 10.0
    verify_tls: bool = True

    async def send(self, to: str, message: RenderedMessage, *, headers: dict[str, str] | None = None) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "corral")
        for key, value in (headers or {}).items():
            mail[key] = value
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        try:
            await asyncio.to_thread(self._send_sync, mail, to)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise Unavailable(f"SMTP relay {self.host}:{self.port}: {_reason(exc)}") from None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _send_sync(self, mail: EmailMessage, to: str) -> None:
        client: smtplib.SMTP
        if self.security == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self._context())
                client.ehlo()
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(mail, from_addr=self.sender, to_addrs=[to])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {text[:200]}"
    return f"{type(exc).__name__}: {exc}"[:200]
