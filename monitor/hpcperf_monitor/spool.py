"""On-disk spool of messages not yet confirmed by the broker.

Every message is written here first (one file per message, fsynced, named
by sequence number so a directory listing is the send order) and deleted
only after the broker confirms it, so a broker outage or a crash between
publish and confirm never loses a sample; at worst a message is sent twice
and the pipeline drops the duplicate by host and sequence number.

The spool is bounded: past ``max_bytes`` the oldest messages are evicted
and counted in ``evicted``. When an evicted message carried the header, it
is moved onto the next message, because the pipeline appends a message
without a header to the host's current archive file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hpcperf_monitor.state import atomic_write, flocked

log = logging.getLogger(__name__)

SUFFIX = ".msg"


def header_part(body: bytes) -> bytes:
    """The ``$``/``!``/``@`` header lines (and blank lines) before the first record."""
    end = 0
    for line in body.splitlines(keepends=True):
        if line[:1].isdigit():
            break
        end += len(line)
    return body[:end] if body[:1] == b"$" else b""


class Spool:
    def __init__(
        self, directory: Path, max_bytes: int = 100 * 1024 * 1024, lock: Path | None = None
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        #: held by the publisher while it drains (so two processes never send one
        #: message twice); eviction skips while a drain is sending
        self.lock = lock if lock is not None else self.dir / ".lock"

    def pending(self) -> list[Path]:
        """Spooled messages, oldest first."""
        return sorted(p for p in self.dir.iterdir() if p.name.endswith(SUFFIX))

    def put(self, seq: int, body: bytes) -> Path:
        """Store one message durably, then enforce the size bound."""
        # the clock part keeps names unique even if a lost state dir restarts seq
        path = self.dir / f"{seq:012d}-{time.time_ns():019d}{SUFFIX}"
        atomic_write(path, body)
        with flocked(self.lock, timeout=0) as free:
            if free:  # else a drain is emptying the spool right now
                self._evict(keep=path)
        return path

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    @property
    def evicted(self) -> int:
        """How many messages were dropped for space since the spool was made."""
        try:
            return int((self.dir / "evicted").read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _evict(self, keep: Path) -> None:
        dropped = 0
        try:
            files = self.pending()
            sizes = {p: p.stat().st_size for p in files}
            total = sum(sizes.values())
            while total > self.max_bytes and len(files) > 1 and files[0] != keep:
                oldest, files = files[0], files[1:]
                header = header_part(oldest.read_bytes())
                nxt = files[0]
                body = nxt.read_bytes()
                if header and not body.startswith(b"$"):
                    atomic_write(nxt, header + body)
                    total += len(header)
                    sizes[nxt] += len(header)
                oldest.unlink()
                total -= sizes[oldest]
                dropped += 1
        except FileNotFoundError:
            pass  # another process sent or evicted it meanwhile; the next put re-checks
        if dropped:
            atomic_write(self.dir / "evicted", f"{self.evicted + dropped}\n".encode())
            log.error("spool over %d bytes: evicted %d oldest message(s)", self.max_bytes, dropped)
