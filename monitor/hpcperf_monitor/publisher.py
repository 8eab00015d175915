"""Sends messages to RabbitMQ with publisher confirms, through the spool.

Every message is spooled first and deleted only after the broker confirms
it; each send replays the spool oldest-first, so after an outage the queue
gets the missed samples in order before the new one. The queue is durable
and named after the cluster; messages are persistent (delivery_mode=2).

Failures are logged as one line each and never raised: the monitor must
keep sampling whatever the broker does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pika
import pika.exceptions

from hpcperf_monitor.spool import Spool
from hpcperf_monitor.state import flocked

log = logging.getLogger(__name__)

#: errors that mean "the broker did not take it": retry later from the spool
SEND_ERRORS = (pika.exceptions.AMQPError, OSError)

_PROPERTIES = pika.BasicProperties(delivery_mode=2, content_type="text/plain")


def describe(exc: BaseException) -> str:
    """One short line for a log, whatever pika packed into the exception."""
    name = type(exc).__name__
    text = " ".join(str(exc).split()) or repr(exc)
    return (text if text.startswith(name) else f"{name}: {text}")[:240]


def connection_parameters(url: str) -> pika.URLParameters:
    """The URL's parameters, with short timeouts unless the URL sets them.

    pika's defaults retry and wait long enough to stall a Slurm prolog; one
    attempt with a few seconds' timeout is enough, the spool keeps the rest.
    """
    params = pika.URLParameters(url)
    query = urlsplit(url).query
    for name, value in (
        ("connection_attempts", 1), ("socket_timeout", 5.0),
        ("stack_timeout", 10.0), ("blocked_connection_timeout", 30.0),
    ):
        if name not in query:
            setattr(params, name, value)
    return params


class Publisher:
    """A confirmed AMQP channel to one queue, fed from a :class:`Spool`."""

    def __init__(
        self, url: str, queue: str, spool: Spool, lock_timeout: float = 15.0
    ) -> None:
        self.url = url
        self.queue = queue
        self.spool = spool
        self.lock_timeout = lock_timeout
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 5672}"  # never log the password
        self._conn: pika.BlockingConnection | None = None
        self._channel = None

    def _connect(self) -> None:
        if self._conn is not None and self._conn.is_open:
            return
        self._conn = pika.BlockingConnection(connection_parameters(self.url))
        self._channel = self._conn.channel()
        self._channel.confirm_delivery()
        self._channel.queue_declare(queue=self.queue, durable=True)

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except SEND_ERRORS:
                pass

    def send(self, seq: int, body: str | bytes) -> int:
        """Spool ``body`` under ``seq`` and drain the spool; returns messages confirmed."""
        self.spool.put(seq, body.encode() if isinstance(body, str) else body)
        return self.flush()

    def flush(self) -> int:
        """Publish spooled messages oldest first, deleting each once confirmed."""
        with flocked(self.spool.lock, timeout=self.lock_timeout) as mine:
            if not mine:
                log.warning("another monitor process is sending; message stays spooled")
                return 0
            sent = 0
            pending = self.spool.pending()
            try:
                if pending:
                    self._connect()
                for path in pending:
                    try:
                        body = path.read_bytes()
                    except FileNotFoundError:
                        continue  # evicted meanwhile
                    self._channel.basic_publish(
                        exchange="", routing_key=self.queue, body=body,
                        properties=_PROPERTIES, mandatory=True,
                    )  # returns once confirmed; raises if nacked or unroutable
                    self.spool.remove(path)
                    sent += 1
            except SEND_ERRORS as exc:
                self.close()
                left = len(pending) - sent
                log.error(
                    "broker %s queue %s: %s; %d message(s) kept in spool",
                    self.where, self.queue, describe(exc), left,
                )
            return sent

    def idle(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Wait ``seconds`` while answering heartbeats, so the connection stays up."""
        deadline = time.monotonic() + seconds
        while not stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, 1.0)
            if self._conn is not None and self._conn.is_open:
                try:
                    self._conn.process_data_events(time_limit=step)
                    continue
                except SEND_ERRORS as exc:
                    log.warning("broker %s connection lost while idle: %s",
                                self.where, describe(exc))
                    self.close()
            time.sleep(step)
