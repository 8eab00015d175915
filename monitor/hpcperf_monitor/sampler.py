"""Builds the header and the samples the monitor sends.

A :class:`Sampler` runs every available collector once per sample. Types
whose source is absent are left out of the header; a new header (with a
fresh ``$uptime``) is made when a type not declared before appears, when
the host's name or kernel changes, on ``rotate()`` (SIGHUP) and at least
every ``rotate_s`` seconds, because the pipeline starts a new archive file
at each header. A type whose rows come and go (job cgroups) stays declared
in between: job boundaries send no header.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from hpcperf_monitor import schemas
from hpcperf_monitor.collectors import REGISTRY, CollectorUnavailable, Rows, build
from hpcperf_monitor.rawformat import MARK_BEGIN, MARK_END, MARK_SEQ, Header, Sample

log = logging.getLogger(__name__)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def hostname(root: Path = Path("/")) -> str:
    """The node's name as the kernel has it, else the resolver's."""
    return _read(root / "proc/sys/kernel/hostname") or socket.gethostname()


def uname(root: Path = Path("/")) -> str:
    """``sysname machine release version``, the order TACC's monitor writes."""
    live = os.uname()
    kernel = root / "proc/sys/kernel"
    return " ".join((
        _read(kernel / "ostype") or live.sysname,
        _read(kernel / "arch") or live.machine,
        _read(kernel / "osrelease") or live.release,
        _read(kernel / "version") or live.version,
    ))


def uptime(root: Path = Path("/")) -> int:
    """Whole seconds since boot, from ``/proc/uptime`` (0 when unreadable)."""
    text = _read(root / "proc/uptime")
    try:
        return int(float(text.split()[0])) if text else 0
    except ValueError:
        return 0


def build_header(root: Path, types: Iterable[str], host: str | None = None) -> Header:
    """The ``$`` properties in TACC's order, then the schemas of ``types``."""
    return Header(
        properties={
            "tacc_stats": schemas.FORMAT_VERSION,
            "hostname": host or hostname(root),
            "uname": uname(root),
            "uptime": str(uptime(root)),
        },
        schemas={t: schemas.ALL[t] for t in types},
    )


class Sampler:
    """Takes samples of one node (or recorded tree) under ``root``."""

    def __init__(
        self,
        root: Path = Path("/"),
        types: Sequence[str] | None = None,
        rotate_s: float = 86400.0,
        state_dir: Path | None = None,
    ) -> None:
        unknown = [t for t in types or () if t not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown collector(s): {', '.join(unknown)}")
        self.root = Path(root)
        self.types = list(types) if types else list(REGISTRY)
        #: the host's state dir: RAPL totals, the job-id map (None: nothing kept)
        self._collectors = build(self.types, state_dir)
        self.rotate_s = rotate_s
        self.header: Header | None = None
        self._header_made = 0.0
        self._identity: tuple = ()

    def collect(self) -> dict[str, Rows]:
        """Rows of every collector that has a source; the others are skipped."""
        rows: dict[str, Rows] = {}
        for type_ in self.types:
            try:
                rows[type_] = self._collectors[type_](self.root)
            except CollectorUnavailable as exc:
                log.debug("%s unavailable: %s", type_, exc)
            except Exception as exc:  # one broken source must not stop the others
                log.error("%s collector failed: %s: %s", type_, type(exc).__name__, exc)
        return rows

    def close(self) -> None:
        """Release what collectors hold open (perf events); call on shutdown or rebuild."""
        for collector in self._collectors.values():
            close = getattr(collector, "close", None)
            if callable(close):
                close()

    def rotate(self) -> None:
        """Make the next sample carry a fresh header (SIGHUP, config reload)."""
        self.header = None

    def _current_header(self, types: list[str], now: float) -> Header:
        """The header for a sample with rows of ``types``.

        A type declared once stays declared until the next rotation, even in
        samples where it has no rows: Slurm cgroups and MIG instances come
        and go with jobs, and a job boundary must not re-send the header (a
        new archive file each time). A type never declared before, a new
        host name or kernel, ``rotate()`` and the daily rotation do.
        """
        host = hostname(self.root)
        name = uname(self.root)
        stale = now - self._header_made >= self.rotate_s
        declared = self._identity[2] if self._identity else ()
        if (self.header is not None and not stale and (host, name) == self._identity[:2]
                and set(types) <= set(declared)):
            return self.header
        if self.header is not None and not stale and (host, name) == self._identity[:2]:
            new = sorted(set(types) - set(declared))
            log.info("types now sampled: %s (new: %s)", " ".join(types), " ".join(new))
            keep = set(types) | set(declared)
            types = [t for t in self.types if t in keep]
        self.header = build_header(self.root, types, host)
        self._header_made, self._identity = now, (host, name, tuple(types))
        return self.header

    def sample(
        self,
        jobid: str = "-",
        seq: int | None = None,
        begin: str | None = None,
        end: str | None = None,
        now: float | None = None,
        extra_marks: Sequence[str] = (),
    ) -> Sample:
        """One sample; ``seq``/``begin``/``end`` (and ``extra_marks``) become ``%`` lines."""
        now = time.time() if now is None else now
        rows = self.collect()
        header = self._current_header(list(rows), now)
        marks = [f"{MARK_SEQ} {seq}"] if seq is not None else []
        if begin:
            marks.append(f"{MARK_BEGIN} {begin}")
        if end:
            marks.append(f"{MARK_END} {end}")
        marks.extend(extra_marks)
        return Sample(
            time=now, jobid=jobid or "-", host=header.hostname or "-",
            header=header, rows=rows, marks=marks,
        )
