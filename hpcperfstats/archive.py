"""The raw stats archive: ``<root>/<host>/<epoch>`` files plus a sample index.

A message that starts with a ``$`` header opens a new file for its host,
named by its first sample's epoch; other messages append to the host's
current file, so each file is a complete raw stats file any reader accepts
(including TACC's tools). Beside each file, ``<epoch>.idx`` lists one
``<sample epoch> <byte offset>`` line per sample so an hourly partition
reads only its own bytes, not a whole day's file. Files imported from an
existing archive have no index and are read whole.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.rawformat import Header, RawStats, read_raw

from hpcperfstats.textframe import Chunk, parse_header

INDEX_SUFFIX = ".idx"
#: Files opened after a range that are still searched for its late samples
#: (with daily rotation: a spool replayed up to two days late).
LATE_FILES = 2


def host_files(host_dir: Path) -> list[tuple[int, Path]]:
    """Archive files of one host, oldest first."""
    out = []
    for path in host_dir.iterdir():
        if path.name.isdigit() and path.is_file():
            out.append((int(path.name), path))
    return sorted(out)


def read_header(path: Path) -> Header | None:
    """The header block at the start of an archive file."""
    lines = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line[:1].isdigit():
                break
            if line.strip() and not line.startswith("#"):
                lines.append(line.rstrip("\r\n"))
    return parse_header(lines) if lines else None


def read_index(path: Path) -> list[tuple[float, int]]:
    idx = path.with_name(path.name + INDEX_SUFFIX)
    if not idx.exists():
        return []
    out = []
    for line in idx.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((float(parts[0]), int(parts[1])))
    return out


@dataclass
class _Current:
    path: Path
    header: Header
    size: int


@dataclass
class ArchiveWriter:
    """Appends messages to host files; ``sync`` makes everything durable.

    Callers ack broker messages only after ``sync`` returns.
    """

    root: Path
    _current: dict[str, _Current] = field(default_factory=dict)
    _dirty: set[Path] = field(default_factory=set)
    _dirty_dirs: set[Path] = field(default_factory=set)

    def current_header(self, host: str) -> Header | None:
        cur = self._load_current(host)
        return cur.header if cur else None

    def _load_current(self, host: str) -> _Current | None:
        if host in self._current:
            return self._current[host]
        host_dir = self.root / host
        if not host_dir.is_dir():
            return None
        files = host_files(host_dir)
        if not files:
            return None
        path = files[-1][1]
        header = read_header(path)
        if header is None:
            return None
        cur = _Current(path, header, path.stat().st_size)
        self._current[host] = cur
        return cur

    def append(self, host: str, text: str, parsed: RawStats) -> Path:
        """Write one parsed, valid message for ``host``; returns the file."""
        data = text if text.endswith("\n") else text + "\n"
        host_dir = self.root / host
        if parsed.headers and text.startswith("$"):
            host_dir.mkdir(parents=True, exist_ok=True)
            self._dirty_dirs.update({host_dir, self.root})
            path = host_dir / str(int(parsed.samples[0].time))
            size = path.stat().st_size if path.exists() else 0
            cur = _Current(path, parsed.headers[-1], size)
            self._current[host] = cur
        else:
            cur = self._load_current(host)
            if cur is None:
                raise ValueError(f"no archive file with a header for host {host!r}")
        offsets = _sample_offsets(data)
        encoded = data.encode("utf-8")
        with open(cur.path, "ab") as fh:
            fh.write(encoded)
        with open(cur.path.with_name(cur.path.name + INDEX_SUFFIX), "a") as fh:
            for sample, off in zip(parsed.samples, offsets, strict=False):
                fh.write(f"{sample.time_text or sample.time} {cur.size + off}\n")
        cur.size += len(encoded)
        self._dirty.add(cur.path)
        return cur.path

    def sync(self) -> None:
        for path in self._dirty:
            for target in (path, path.with_name(path.name + INDEX_SUFFIX)):
                fd = os.open(target, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for directory in self._dirty_dirs:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._dirty.clear()
        self._dirty_dirs.clear()


def _sample_offsets(text: str) -> list[int]:
    """Byte offsets of record lines (``<epoch> <jobid> <host>``) in text."""
    offsets = []
    pos = 0
    for line in text.encode("utf-8").splitlines(keepends=True):
        if line[:1].isdigit():
            offsets.append(pos)
        pos += len(line)
    return offsets


def read_chunks(root: Path, start: float, end: float, lookback: float) -> Iterator[Chunk]:
    """Raw text of every host with start - lookback <= time < end, file by file.

    An indexed file yields only the bytes of its samples in the range, with
    the file's header and boot time (from its first sample) attached; a file
    without an index (imported) is yielded whole and filtered by time later.
    """
    root = Path(root)
    if not root.is_dir():
        return
    lo = start - lookback
    for host_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = host_files(host_dir)
        later = 0
        for i, (epoch, path) in enumerate(files):
            if epoch >= end:
                # a replayed spool appends old samples to the newest file:
                # look into the next few files for samples of this range
                later += 1
                if later > LATE_FILES:
                    break
            index = read_index(path)
            if index and max(t for t, _ in index) < lo or not index and epoch >= end:
                continue
            if not index and i + 1 < len(files) and files[i + 1][0] <= lo:
                continue
            chunk = _slice(path, index, lo, start, end)
            if chunk is not None:
                yield chunk


def _slice(path: Path, index: list[tuple[float, int]], lo: float, start: float,
           end: float) -> Chunk | None:
    if not index:
        return Chunk(path.read_text(encoding="utf-8", errors="replace"), source=str(path))
    header = read_header(path)
    if header is None:
        return None
    # the range's samples and, for the first rate, only the one sample before it
    times = [t for t, _ in index]
    if all(a <= b for a, b in zip(times, times[1:], strict=False)):
        i, j = bisect_left(times, start), bisect_left(times, end)
        picks = list(range(i - 1 if i > 0 and times[i - 1] >= lo else i, j))
    else:  # late samples appended out of order: pick each one in range
        picks = [k for k, t in enumerate(times) if start <= t < end]
        before = [(t, k) for k, t in enumerate(times) if lo <= t < start]
        picks = sorted(picks + [max(before)[1]]) if before else picks
    if not picks:
        return None
    ranges: list[list[int | None]] = []
    for k in picks:
        start, stop = index[k][1], index[k + 1][1] if k + 1 < len(index) else None
        if ranges and ranges[-1][1] == start:
            ranges[-1][1] = stop
        else:
            ranges.append([start, stop])
    parts = []
    with open(path, "rb") as fh:
        for start, stop in ranges:
            fh.seek(start)
            parts.append(fh.read() if stop is None else fh.read(stop - start))
    uptime = header.uptime
    boot = index[0][0] - uptime if uptime is not None else None
    # line numbers of issues are relative to the slice; the source names it
    return Chunk(b"".join(parts).decode("utf-8", errors="replace"), header, boot,
                 f"{path}@{ranges[0][0]}")


def read_range(root: Path, start: float, end: float, lookback: float) -> Iterator[RawStats]:
    """Reference reader of a range (validation, tools): parsed per file."""
    for chunk in read_chunks(root, start, end, lookback):
        raw = read_raw(chunk.text, source=chunk.source, header=chunk.header)
        raw.samples = [s for s in raw.samples if start - lookback <= s.time < end]
        yield raw
