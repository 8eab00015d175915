"""Building blocks for the hostile-input tests: small messages, failing writers."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import START

#: Prelude of a child drain that dies (exit 70) right after a batch's fsync,
#: before its hours are reported and before its ack. The fault is injected
#: here, in the test, by wrapping the fsync step; the product has no hook.
DIE_AFTER_SYNC = """
import os
from hpcperfstats.ingest.drain import MessageStore
_sync = MessageStore.sync
def _sync_then_die(self):
    _sync(self)
    os._exit(70)
MessageStore.sync = _sync_then_die
"""

E = int(START.timestamp())  # 2026-11-20 12:00 UTC
SCHEMA = "!cpu user,E,U=cs system,E,U=cs idle,E,U=cs\n!mem MemUsed,U=KB MemTotal,U=KB\n"


def header(host: str = "n1", uptime: int = 5000) -> str:
    return f"$tacc_stats 2.3.5\n$hostname {host}\n$uptime {uptime}\n{SCHEMA}"


def sample(t: int | str, host: str = "n1", k: int = 0) -> str:
    """One sample; CPU jiffies grow by 50 user + 25 system + 25 idle per step k."""
    return (f"{t} - {host}\n"
            f"cpu 0 {1000 + 50 * k} {500 + 25 * k} {9000 + 25 * k}\n"
            f"cpu 1 {1000 + 50 * k} {500 + 25 * k} {9000 + 25 * k}\n"
            f"mem 0 {2000 + k} 8000\n")


def good_messages(host: str = "n1", n: int = 4, step: int = 60) -> list[bytes]:
    """A header message then n - 1 samples, one minute apart."""
    out = [(header(host) + sample(E, host, 0)).encode()]
    out += [sample(E + step * k, host, k).encode() for k in range(1, n)]
    return out


class Crash(BaseException):
    """Stands for the process dying: nothing in the drain may handle it."""


class _TearingFile:
    def __init__(self, fh, marker: bytes, keep, exc: BaseException):
        self.fh, self.marker, self.keep, self.exc = fh, marker, keep, exc

    def write(self, data: bytes) -> int:
        if self.marker in data:
            self.fh.write(data[: self.keep(data)])
            self.fh.flush()
            os.fsync(self.fh.fileno())
            raise self.exc
        return self.fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def tearing_opener(marker: bytes, keep, exc: BaseException):
    """An ``open`` whose write of data containing ``marker`` writes only
    ``keep(data)`` bytes, then raises ``exc`` (ENOSPC, or a crash)."""

    def opener(path: Path, mode: str):
        return _TearingFile(open(path, mode), marker, keep, exc)

    return opener


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}
