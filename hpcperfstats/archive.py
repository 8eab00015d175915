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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.rawformat import Header, RawStats, read_raw

INDEX_SUFFIX = ".idx"


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
            lines.append(line)
    raw = read_raw(lines, source=str(path))
    return raw.headers[0] if raw.headers else None


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


def read_range(root: Path, start: float, end: float, lookback: float) -> Iterator[RawStats]:
    """Samples of every host with start - lookback <= time < end, file by file."""
    root = Path(root)
    if not root.is_dir():
        return
    lo = start - lookback
    for host_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = host_files(host_dir)
        for i, (epoch, path) in enumerate(files):
            if epoch >= end:
                break
            index = read_index(path)
            if index and index[-1][0] < lo:
                continue
            if not index and i + 1 < len(files) and files[i + 1][0] <= lo:
                continue
            yield _read_slice(path, index, lo, end)


def _read_slice(path: Path, index: list[tuple[float, int]], lo: float, end: float) -> RawStats:
    if not index:
        raw = read_raw(path.read_text(encoding="utf-8", errors="replace"), source=str(path))
        raw.samples = [s for s in raw.samples if lo <= s.time < end]
        return raw
    header = read_header(path)
    first = next((off for t, off in index if t >= lo), None)
    stop = next((off for t, off in index if t >= end), None)
    if first is None or header is None:
        return RawStats()
    with open(path, "rb") as fh:
        fh.seek(first)
        chunk = fh.read() if stop is None else fh.read(stop - first)
    # line numbers for issues are relative to the slice; the source names it
    return read_raw(
        chunk.decode("utf-8", errors="replace"), source=f"{path}@{first}", header=header
    )
