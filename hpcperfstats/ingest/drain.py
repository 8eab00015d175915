"""Queue -> archive: validate each message, append it, fsync, then ack.

A drain is bounded in messages and seconds. Messages are acknowledged in
batches, and only after the archive (or quarantine) files holding them are
fsynced, so a crash at any point leaves every unacked message in the queue
for the next drain. A redelivered message whose samples the host's file
already holds is not appended again; any other repeat is dropped downstream
by (host, time). A message that cannot be used, whatever the reason (bad
host name, epoch outside the window, bad lines, an error while storing), is
quarantined with the reason and acked once stored there: it never blocks
the queue, and it is never half-archived (a failed append is undone; a
crash inside one is cut back when the file is next opened).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import pika
from hpcperf_monitor.rawformat import (
    epoch_in_window,
    is_record_line,
    parse_epoch,
    read_raw,
)

from hpcperfstats.archive import quarantine
from hpcperfstats.archive.safepath import host_folder
from hpcperfstats.archive.store import ArchiveWriter, Part
from hpcperfstats.config import Settings, settings
from hpcperfstats.ingest.plain import PlainReader

#: the hourly partition key (Dagster HourlyPartitionsDefinition's format)
HOUR_FORMAT = "%Y-%m-%d-%H:%M"


@dataclass
class DrainResult:
    messages: int = 0
    samples: int = 0
    bytes: int = 0
    quarantined: int = 0
    #: message parts already archived (a redelivery), not written again
    duplicates: int = 0
    #: header-only messages (a new archive file with no sample yet)
    headers_only: int = 0
    #: bytes of torn appends cut back from archive files (kept in quarantine)
    torn_bytes_cut: int = 0
    hosts: set[str] = field(default_factory=set)
    #: hours (partition keys) of every sample stored, or found already stored:
    #: a redelivery after a crash before its hours were reported reports them now
    hours: set[str] = field(default_factory=set)
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    #: (reason, where stored) of this drain's quarantined messages, the first 100
    rejected: list[tuple[str, str]] = field(default_factory=list)


@lru_cache(maxsize=4096)
def _hour_key(hour: float) -> str:
    return time.strftime(HOUR_FORMAT, time.gmtime(hour))


def hour_key(epoch: float) -> str:
    """The hourly partition key of ``epoch`` (formatted once per hour)."""
    return _hour_key(epoch - epoch % 3600)




class EpochWindow(NamedTuple):
    """The sane window of a live message's sample epochs (see ``epoch_in_window``)."""

    received: float
    earliest: float
    max_ahead_s: float


def epoch_window(received: float, cfg: Settings | None = None) -> EpochWindow:
    """Sample epochs accepted for a message received at ``received``."""
    cfg = cfg or settings()
    return EpochWindow(received, cfg.epoch_earliest, cfg.epoch_max_ahead_s)


def epoch_problem(text: str, window: EpochWindow) -> str | None:
    """Why a record line's epoch is unusable, or None when it is fine.

    The reader's rules, one place each: the grammar (``parse_epoch``: plain
    ASCII decimal) and, for live data only, the window around the receive
    time (``epoch_in_window``; settings HPCPERF_EPOCH_EARLIEST and
    HPCPERF_EPOCH_MAX_AHEAD_S).
    """
    epoch = parse_epoch(text)
    if epoch is None:
        return f"epoch {text[:40]!r} is not a plain ASCII decimal number"
    return epoch_in_window(epoch, *window)


def _significant(line: str) -> bool:
    return bool(line.strip()) and not line.startswith("#")


def split_message(text: str) -> list[tuple[str, bool]]:
    """A message's parts: (text, opens a new file).

    The first line that is not blank or a comment decides whether the
    message opens a new file (a ``$`` header); a header block after a
    sample starts a new part, which opens a new file in turn.
    """
    parts: list[tuple[str, bool]] = []
    lines = text.split("\n")
    begin, opens, seen_sample, decided = 0, False, False, False
    pos = 0
    for line in lines:
        if _significant(line):
            if not decided:
                opens, decided = line.startswith("$"), True
            elif line.startswith("$") and seen_sample:
                parts.append((text[begin:pos], opens))
                begin, opens, seen_sample = pos, True, False
            seen_sample = seen_sample or is_record_line(line)
        pos += len(line) + 1
    parts.append((text[begin:], opens))
    return parts


def _message_host(text: str) -> str | None:
    """The host a message names first: ``$hostname`` or a record line's."""
    for line in text.split("\n"):
        if is_record_line(line):
            parts = line.split()
            return parts[2] if len(parts) == 3 else None
        if line.startswith("$hostname "):
            return line.split(None, 1)[1].strip()
    return None


class Rejected(Exception):
    """A message that cannot be archived: its reason and the bad lines."""

    def __init__(self, reason: str, details: list[str] | None = None):
        super().__init__(reason)
        self.reason, self.details = reason, details


class MessageStore:
    """Validates messages and files them in the archive or quarantine.

    One message is one unit of failure: whatever goes wrong with it, while
    validating, storing or indexing, sends it to quarantine with the reason,
    and the next message is taken.
    """

    def __init__(self, archive_dir: Path, quarantine_dir: Path, max_bytes: int,
                 opener=open, plain: bool = True):
        self.quarantine_dir = Path(quarantine_dir)
        self.writer = ArchiveWriter(Path(archive_dir), self.quarantine_dir, opener)
        self.max_bytes = max_bytes
        self.result = DrainResult()
        self.settings = settings()  # once per drain, not per message
        #: the fast path for plain messages (``plain=False``: the reference
        #: path decides every message, as the equivalence tests compare)
        self.plain = PlainReader(host_folder) if plain else None

    def _reject(self, body: bytes, reason: str, origin: str, details: list[str] | None = None):
        record = quarantine.put(self.quarantine_dir, body, reason, origin, details)
        if len(self.result.rejected) < 100:
            self.result.rejected.append((reason, str(record.path)))
        self.result.quarantined += 1
        key = reason.split(":")[0]
        self.result.reasons[key] = self.result.reasons.get(key, 0) + 1

    def store(self, body: bytes, origin: str, received: float | None = None) -> None:
        """File one message (not yet durable: call ``sync``)."""
        self.result.messages += 1
        self.result.bytes += len(body)
        self.writer.begin()
        try:
            self._store(body, origin, time.time() if received is None else received)
        except Rejected as exc:
            self._reject(body, exc.reason, origin, exc.details)
        except Exception as exc:  # anything else: still this message's fault, never the drain's
            self.writer.rollback()  # a message is archived whole or not at all
            self._reject(body, f"failed: {type(exc).__name__}: {str(exc)[:300]}", origin)
        finally:
            self.result.torn_bytes_cut = sum(n for _, n in self.writer.repaired)

    def _store(self, body: bytes, origin: str, received: float) -> None:
        if len(body) > self.max_bytes:
            raise Rejected(f"oversized: {len(body)} bytes > {self.max_bytes}")
        window = epoch_window(received, self.settings)
        plain = self.plain and self.plain.parts(body, self.writer.current_header, window)
        if plain:
            host, parts = plain
        else:  # the reference path: it accepts what the fast path does, and says why not
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Rejected(f"not UTF-8 text: {exc}") from None
            name = _message_host(text)
            if name is None:
                raise Rejected("no record line naming a host")
            try:
                host = host_folder(name)
            except ValueError as exc:
                raise Rejected(f"bad host: {exc}") from None
            parts = self._validate(text, host, origin, window)
        written = [(self.writer.append(host, part, received), part) for part in parts]
        hours = self.result.hours
        for path, part in written:  # counted once every part is stored
            hours.update(map(hour_key, part.times))
            if path is None:  # already archived (a redelivery): nothing written
                self.result.duplicates += 1
                continue
            self.result.headers_only += part.opens and not part.times
            self.result.samples += len(part.times)
            self.result.hosts.add(host)

    def _validate(self, text: str, host: str, origin: str, window: EpochWindow) -> list[Part]:
        """The reference validation: ``read_raw`` over each part, and the reasons."""
        out = []
        header = None
        for part_text, opens in split_message(text):
            if not opens:
                header = header or self.writer.current_header(host)
                if header is None:
                    raise Rejected(f"no header: host {host} has no archive file to continue")
            parsed = read_raw(part_text, source=origin, header=None if opens else header)
            if parsed.issues:
                raise Rejected(f"unparsable: {len(parsed.issues)} bad lines",
                               [str(i) for i in parsed.issues])
            if not parsed.samples and not opens:
                raise Rejected("no samples: 0 bad lines")
            bad = [p for s in parsed.samples if (p := epoch_problem(s.time_text, window))]
            if bad:
                raise Rejected(f"unparsable: {len(bad)} bad epochs", bad[:100])
            names = [h.hostname for h in parsed.headers if h.hostname is not None]
            for other in names + [s.host for s in parsed.samples]:
                try:
                    short = host_folder(other)
                except ValueError as exc:
                    raise Rejected(f"bad host: {exc}") from None
                if short != host:
                    raise Rejected(f"several hosts in one message: {host}, {short}")
            if opens:
                header = parsed.headers[-1]
            out.append(Part.of(part_text.encode(), opens, header if opens else None,
                               [s.time for s in parsed.samples],
                               [s.time_text for s in parsed.samples]))
        return out

    def sync(self) -> None:
        self.writer.sync()


def store_messages(
    bodies: Iterable[bytes], archive_dir: Path, quarantine_dir: Path,
    max_bytes: int = 16 * 1024 * 1024,
) -> DrainResult:
    """Archive messages that did not come through a broker (demo, tests).

    The caller reports ``result.hours`` to Dagster (``raw_stats_archive``
    partitions) so ``host_data`` follows.
    """
    started = time.monotonic()
    store = MessageStore(archive_dir, quarantine_dir, max_bytes)
    for n, body in enumerate(bodies):
        store.store(body, f"direct:{n}")
    store.sync()
    store.result.seconds = time.monotonic() - started
    return store.result


def drain_queue(
    amqp_url: str,
    queue: str,
    archive_dir: Path,
    quarantine_dir: Path,
    max_messages: int,
    max_seconds: float,
    max_bytes: int = 16 * 1024 * 1024,
    batch: int = 500,
    progress=None,
    opener=open,
    archived: Callable[[set[str]], None] | None = None,
    plain: bool = True,
) -> DrainResult:
    """Consume up to ``max_messages`` for up to ``max_seconds``; ack after fsync.

    ``archived`` is told the hours of each batch after its fsync and before
    its ack (the Dagster drain reports them as ``raw_stats_archive``
    partitions): a crash between the two redelivers the batch, whose copies
    the archive recognises and whose hours are told again.
    """
    started = time.monotonic()
    store = MessageStore(archive_dir, quarantine_dir, max_bytes, opener, plain)
    told: set[str] = set()
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
            if archived is not None and store.result.hours - told:
                archived(store.result.hours - told)
                told.update(store.result.hours)
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            unacked = 0
            if progress:
                progress(store.result)

        for method, _props, body in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:  # queue idle: nothing more to take now
                break
            try:
                store.store(body, f"amqp:{queue}:{method.delivery_tag}")
            except Exception:
                # not even quarantine could keep it (disk full?): ack what is
                # stored, leave this message in the queue, and stop
                commit()
                raise
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
