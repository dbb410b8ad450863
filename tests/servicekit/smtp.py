"""An SMTP sink (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from tests.servicekit.process import (
    ServiceError,
    free_port,
)


class ReceivedMessage(EmailMessage):
    """A received mail: the parsed message plus its SMTP envelope."""

    mail_from: str = ""
    rcpt_tos: list[str]

    def __init__(self, policy: Any = email.policy.default) -> None:
        super().__init__(policy)
        self.rcpt_tos = []


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives in ``messages``.

    Accepts any AUTH credentials (recorded in ``logins``) without TLS, like a permissive relay.
    """

    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _controller: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls) -> SmtpSink:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult
        except ImportError as exc:
            raise ServiceError("aiosmtpd is not installed") from exc

        sink = cls(host="127.0.0.1", port=0)

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                raw = envelope.original_content or envelope.content
                data = raw if isinstance(raw, bytes) else raw.encode()
                msg = BytesParser(_class=ReceivedMessage, policy=email.policy.default).parsebytes(data)
                assert isinstance(msg, ReceivedMessage)
                msg.mail_from = envelope.mail_from
                msg.rcpt_tos = list(envelope.rcpt_tos)
                with sink._lock:
                    sink.messages.append(msg)
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            login = getattr(auth_data, "login", b"")
            sink.logins.append(login.decode() if isinstance(login, bytes) else str(login))
            return AuthResult(success=True)

        last_error: Exception | None = None
        for _ in range(5):  # port=0 does not work with Controller; a chosen port may be taken meanwhile
            port = free_port()
            controller = Controller(
                Handler(),
                hostname="127.0.0.1",
                port=port,
                authenticator=authenticator,
                auth_require_tls=False,
                ready_timeout=10,
            )
            try:
                controller.start()
            except Exception as exc:
                last_error = exc
                continue
            sink.port = port
            sink._controller = controller
            return sink
        raise ServiceError(f"aiosmtpd could not start: {last_error}")

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.logins.clear()

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived (for senders that deliver in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s), the SMTP sink got {len(self.messages)} in {timeout:.0f}s"
                )
            await asyncio.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None
