"""Queue -> archive: validate each message, append it, fsync, then ack.

A drain is bounded in messages and seconds. Messages are acknowledged in
batches, and only after the archive (or quarantine) files holding them are
fsynced, so a crash at any point leaves every unacked message in the queue
for the next drain; re-delivered samples are dropped downstream by
(host, time). A message that cannot be used is quarantined with the reason
and acked once stored there: it never blocks the queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pika
from hpcperf_monitor.rawformat import RawStats, read_raw

from hpcperfstats import quarantine
from hpcperfstats.accounting import short_host
from hpcperfstats.archive import ArchiveWriter
from hpcperfstats.pending import Pending

#: Partition key format of hourly partitions (Dagster's hourly default).
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
#: Tests set this to make a drain exit right after fsync, before its ack.
CRASH_ENV = "HPCPERF_DRAIN_CRASH_AFTER_SYNC"


@dataclass
class DrainResult:
    messages: int = 0
    samples: int = 0
    bytes: int = 0
    quarantined: int = 0
    hosts: set[str] = field(default_factory=set)
    hours: set[str] = field(default_factory=set)
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    #: (reason, where stored) of this drain's quarantined messages, the first 100
    rejected: list[tuple[str, str]] = field(default_factory=list)


def hour_key(epoch: float) -> str:
    return time.strftime(HOUR_FORMAT, time.gmtime(epoch - epoch % 3600))


def _message_host(text: str) -> str | None:
    for line in text.splitlines():
        if line[:1].isdigit():
            parts = line.split()
            return parts[2] if len(parts) == 3 else None
        if line.startswith("$hostname "):
            return line.split(None, 1)[1].strip()
    return None


class MessageStore:
    """Validates messages and files them in the archive or quarantine."""

    def __init__(self, archive_dir: Path, quarantine_dir: Path, max_bytes: int):
        self.writer = ArchiveWriter(Path(archive_dir))
        self.quarantine_dir = Path(quarantine_dir)
        self.max_bytes = max_bytes
        self.result = DrainResult()

    def _reject(self, body: bytes, reason: str, origin: str, details: list[str] | None = None):
        record = quarantine.put(self.quarantine_dir, body, reason, origin, details)
        if len(self.result.rejected) < 100:
            self.result.rejected.append((reason, str(record.path)))
        self.result.quarantined += 1
        key = reason.split(":")[0]
        self.result.reasons[key] = self.result.reasons.get(key, 0) + 1

    def store(self, body: bytes, origin: str) -> None:
        """File one message (not yet durable: call ``sync``)."""
        self.result.messages += 1
        self.result.bytes += len(body)
        if len(body) > self.max_bytes:
            self._reject(body, f"oversized: {len(body)} bytes > {self.max_bytes}", origin)
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._reject(body, f"not UTF-8 text: {exc}", origin)
            return
        host_name = _message_host(text)
        if host_name is None:
            self._reject(body, "no record line naming a host", origin)
            return
        host = short_host(host_name)
        header = None if text.startswith("$") else self.writer.current_header(host)
        if not text.startswith("$") and header is None:
            self._reject(body, f"no header: host {host} has no archive file to continue",
                         origin)
            return
        parsed: RawStats = read_raw(text, source=origin, header=header)
        if parsed.issues or not parsed.samples:
            reason = "unparsable" if parsed.issues else "no samples"
            self._reject(body, f"{reason}: {len(parsed.issues)} bad lines", origin,
                         [str(i) for i in parsed.issues])
            return
        if any(short_host(s.host) != host for s in parsed.samples):
            self._reject(body, "samples of several hosts in one message", origin)
            return
        self.writer.append(host, text, parsed)
        self.result.samples += len(parsed.samples)
        self.result.hosts.add(host)
        self.result.hours.update(hour_key(s.time) for s in parsed.samples)

    def sync(self) -> None:
        self.writer.sync()


def store_messages(
    bodies: Iterable[bytes], archive_dir: Path, quarantine_dir: Path, state_dir: Path,
    max_bytes: int = 16 * 1024 * 1024,
) -> DrainResult:
    """Archive messages that did not come through a broker (demo, import)."""
    started = time.monotonic()
    store = MessageStore(archive_dir, quarantine_dir, max_bytes)
    for n, body in enumerate(bodies):
        store.store(body, f"direct:{n}")
    store.sync()
    Pending(state_dir, "host_data").mark(store.result.hours)
    store.result.seconds = time.monotonic() - started
    return store.result


def drain_queue(
    amqp_url: str,
    queue: str,
    archive_dir: Path,
    quarantine_dir: Path,
    state_dir: Path,
    max_messages: int,
    max_seconds: float,
    max_bytes: int = 16 * 1024 * 1024,
    batch: int = 500,
    progress=None,
) -> DrainResult:
    """Consume up to ``max_messages`` for up to ``max_seconds``; ack after fsync."""
    started = time.monotonic()
    store = MessageStore(archive_dir, quarantine_dir, max_bytes)
    pending = Pending(state_dir, "host_data")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        channel.basic_qos(prefetch_count=min(batch * 2, 5000))
        last_tag = None
        unacked = 0

        def commit() -> None:
            nonlocal unacked
            if last_tag is None or unacked == 0:
                return
            store.sync()
            pending.mark(store.result.hours)
            if os.environ.get(CRASH_ENV):  # fault injection: die between fsync and ack
                os._exit(70)
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            unacked = 0
            if progress:
                progress(store.result)

        for method, _props, body in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:  # queue idle: nothing more to take now
                break
            store.store(body, f"amqp:{queue}:{method.delivery_tag}")
            last_tag = method.delivery_tag
            unacked += 1
            if unacked >= batch:
                commit()
            if (store.result.messages >= max_messages
                    or time.monotonic() - started >= max_seconds):
                break
        commit()
        channel.cancel()
    finally:
        if conn.is_open:
            conn.close()
    store.result.seconds = time.monotonic() - started
    return store.result


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in the queue (passive declare: creates nothing)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        frame = conn.channel().queue_declare(queue=queue, durable=True, passive=True)
        return frame.method.message_count
    finally:
        conn.close()
