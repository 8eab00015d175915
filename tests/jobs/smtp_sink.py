"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from hpcperfstats.ports import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,)).get_content()
        return body.replace("\r\n", "\n")  # lines travel with CRLF


@dataclass
class Sink:
    """``handle_DATA`` keeps each message. ``refuse`` (if set) sees the number of
    each DATA (1, 2, ...) first; a reply it returns is sent instead, and that
    message is not kept (a server going down mid-send answers 421)."""

    received: list[Received] = field(default_factory=list)
    refuse: Callable[[int], str | None] | None = None
    attempts: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.attempts += 1
        if self.refuse is not None and (reply := self.refuse(self.attempts)):
            return reply
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


class SmtpServer:
    """Start, stop and restart on the same port, as a mail relay going down would."""

    def __init__(self) -> None:
        self.sink = Sink()
        self.port = free_port()
        self.controller: Controller | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.controller is None:
                self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
                self.controller.start()

    def stop(self) -> None:
        with self._lock:
            if self.controller is not None:
                self.controller.stop()
                self.controller = None

    def env(self) -> dict[str, str]:
        return {"HPCPERF_SMTP_HOST": "127.0.0.1", "HPCPERF_SMTP_PORT": str(self.port)}
