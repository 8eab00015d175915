"""Delivery: SMTP with retries, an optional webhook, and the dry-run folder.

A delivery either succeeds or raises ``DeliveryFailed`` after its retries;
the caller then leaves the alerts pending (nothing is lost) and fails the
Dagster run so staff see it. A mail server that accepted a message before
the connection broke can receive it twice on retry: at-least-once, never
zero.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from hpcperfstats.config import env

log = logging.getLogger("hpcperf.alerts")


class DeliveryFailed(Exception):
    """Every attempt failed; the message says the last reason."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    starttls: bool
    timeout_s: float
    retries: int
    retry_wait_s: float

    @classmethod
    def from_env(cls) -> SmtpSettings:
        return cls(host=env("SMTP_HOST"), port=int(env("SMTP_PORT")), user=env("SMTP_USER"),
                   password=env("SMTP_PASSWORD"),
                   starttls=env("SMTP_STARTTLS").lower() in ("1", "true", "yes"),
                   timeout_s=float(env("SMTP_TIMEOUT_S")), retries=int(env("SMTP_RETRIES")),
                   retry_wait_s=float(env("SMTP_RETRY_WAIT_S")))


def with_retries(attempt: Callable[[], None], retries: int, wait_s: float, what: str) -> int:
    """Run ``attempt`` up to 1 + ``retries`` times, waiting longer each time; attempts used."""
    last: Exception | None = None
    for n in range(retries + 1):
        try:
            attempt()
            return n + 1
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, 4xx/5xx
            last = exc
            log.warning("%s: attempt %d of %d failed: %s", what, n + 1, retries + 1, exc)
            if n < retries:
                time.sleep(wait_s * (2**n))
    raise DeliveryFailed(f"{what}: {type(last).__name__}: {last}")


def send_mail(msg: EmailMessage, smtp: SmtpSettings) -> int:
    """Send one message (To and Cc); attempts used. ``DeliveryFailed`` after the retries."""

    def attempt() -> None:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            refused = server.send_message(msg)
            if refused:  # some recipients refused: the rest got it; say who did not
                log.error("%s: recipients refused: %s", msg["Subject"], sorted(refused))

    return with_retries(attempt, smtp.retries, smtp.retry_wait_s, f"mail to {msg['To']}")


def post_webhook(url: str, payload: dict, retries: int, wait_s: float,
                 timeout_s: float = 30.0) -> int:
    """POST Slack/Mattermost-style JSON; attempts used."""
    body = json.dumps(payload).encode()

    def attempt() -> None:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            answer.read()

    return with_retries(attempt, retries, wait_s, "webhook")


def write_dry_run(path: Path, msg: EmailMessage) -> Path:
    """Dry run: the mail as it would go out, as an ``.eml`` file (the caller proved
    ``path`` inside its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(msg))
    return path
