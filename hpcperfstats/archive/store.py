"""The raw stats archive: ``<root>/<host>/<epoch>`` files plus a sample index.

A message whose first line that is not blank or a comment is a ``$`` header
opens a new file for its host, named by its first sample's epoch (by the
receive time when it has no sample); other messages append to the host's
current file, so each file is one header and its samples, a raw stats file
any reader accepts (TACC's tools too). Beside each file, ``<epoch>.idx``
says where its samples are, one ASCII line per entry:

- ``<sample epoch> <start> <end>``: a sample the drain wrote, bytes [start, end);
- ``$ <start> <end>``: the header block the drain wrote;
- ``<sample epoch> <start>``: an imported sample (it runs to the next one).

An hourly partition reads only its samples' bytes, not a whole day's file.
A file whose index has ``$`` or 3-field lines was written by the drain: it
ends at its last complete, indexed entry, so bytes after that are a torn
append (a crash or a full disk inside ``append``). The writer cuts them back
when it opens the file and before each append, keeping the cut bytes in
quarantine. Files without such lines (imported) are never cut. Readers take
only indexed bytes, so a torn tail is never read as a (partial) sample.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.rawformat import Header, ParseIssue, RawStats, read_raw
from hpcperf_monitor.state import atomic_write

from hpcperfstats.archive import quarantine
from hpcperfstats.archive.days import (
    GZ,
    archive_entries,
    archive_open,
    archive_size,
    carried_header,
    fsync_path,
    rotation_name,
)
from hpcperfstats.archive.safepath import inside
from hpcperfstats.hostdata.textframe import Chunk, parse_header
from hpcperfstats.ingest.chunks import Oversized, chunk_max_bytes, iter_lines

INDEX_SUFFIX = ".idx"
#: Files opened after a range that are still searched for its late samples
#: (with daily rotation: a spool replayed up to two days late).
LATE_FILES = 2

_EPOCH = re.compile(rb"[0-9]+(?:\.[0-9]+)?")
_OFFSET = re.compile(rb"[0-9]+")
_TIER = (b"@fast", b"@full")


def host_files(host_dir: Path) -> list[tuple[int, Path]]:
    """Archive files of one host, oldest first (``<epoch>`` or closed ``<epoch>.gz``)."""
    return archive_entries(host_dir)


def read_header(path: Path) -> Header | None:
    """The header block at the start of an archive file."""
    lines = []
    with archive_open(path) as fh:
        for _, raw in iter_lines(fh, chunk_max_bytes()):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line[:1].isascii() and line[:1].isdigit() or line in ("@fast", "@full"):
                break
            if line.strip() and not line.startswith("#"):
                lines.append(line)
    return parse_header(lines) if lines else None


@dataclass(frozen=True)
class IndexEntry:
    time: float
    start: int
    end: int | None  # None: imported, the sample runs to the next entry


@dataclass
class Index:
    """A parsed ``.idx``: its well-formed complete lines (a torn last line is not)."""

    entries: list[IndexEntry]
    header_end: int | None = None
    #: every line was well formed and ended with a newline
    clean: bool = True

    @property
    def drain(self) -> bool:
        """Written by the drain (so cut back to ``committed`` when torn)."""
        return self.header_end is not None or any(e.end is not None for e in self.entries)

    @property
    def committed(self) -> int:
        """Bytes of the file held by complete, indexed entries."""
        return max([self.header_end or 0, *(e.end for e in self.entries if e.end is not None)])

    def text(self) -> str:
        head = f"$ 0 {self.header_end}\n" if self.header_end is not None else ""
        return head + "".join(f"{e.time!r} {e.start}{'' if e.end is None else f' {e.end}'}\n"
                              for e in self.entries)


def index_path(path: Path) -> Path:
    return path.with_name(path.name + INDEX_SUFFIX)


def read_index(path: Path) -> Index | None:
    """The index of archive file ``path``; None when it has none."""
    try:
        data = index_path(path).read_bytes()
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    index = Index([], clean=lines[-1] == b"")
    for line in lines[:-1]:  # the last is empty or torn
        parts = line.split(b" ")
        if len(parts) == 3 and parts[0] == b"$" and all(_OFFSET.fullmatch(p) for p in parts[1:]):
            index.header_end = int(parts[2])
        elif (len(parts) in (2, 3) and _EPOCH.fullmatch(parts[0])
              and all(_OFFSET.fullmatch(p) for p in parts[1:])):
            end = int(parts[2]) if len(parts) == 3 else None
            index.entries.append(IndexEntry(float(parts[0]), int(parts[1]), end))
        else:
            index.clean = False
    return index


def repair(path: Path, quarantine_dir: Path) -> int:
    """Cut a drain-written file back to its last complete, indexed entry.

    The cut bytes go to quarantine (the first ``HPCPERF_CHUNK_MAX_BYTES`` of
    them when more); index lines that are torn or claim bytes the file does
    not hold are dropped. Files without a drain index are left alone.
    Returns the number of bytes cut.
    """
    index = read_index(path)
    if index is None or not index.drain:
        return 0
    size = path.stat().st_size
    if (index.header_end or 0) > size:  # the header itself is not all there
        index.header_end, index.entries = None, []
    kept = [e for e in index.entries if e.end is None or e.end <= size]
    dropped = len(kept) != len(index.entries) or not index.clean
    index.entries = kept
    committed = index.committed if index.drain else 0
    cut = size - committed
    if cut > 0:
        with open(path, "rb") as fh:
            fh.seek(committed)
            data = fh.read(min(cut, chunk_max_bytes()))
        reason = (f"torn append: {cut} bytes after the last complete sample of {path} "
                  f"(at byte {committed}) cut back")
        quarantine.put(quarantine_dir, data, reason, f"archive:{path}@{committed}")
        with open(path, "r+b") as fh:
            fh.truncate(committed)
            os.fsync(fh.fileno())
    if dropped or cut > 0:
        if committed == 0:  # nothing complete: the file goes (its bytes are in quarantine)
            path.unlink()
            index_path(path).unlink(missing_ok=True)
        else:
            atomic_write(index_path(path), index.text().encode())
    return max(cut, 0)


def _spans(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """End of the header block, and each sample's [start, end) in ``data``.

    A sample starts at its record line, or at the ``@fast``/``@full`` line
    just before it, and runs to the next sample's start or the end.
    """
    starts: list[int] = []
    pos, prev = 0, None
    for line in data.split(b"\n"):
        if line[:1].isdigit() and line[:1].isascii():
            starts.append(prev if prev is not None else pos)
        prev = pos if line.rstrip(b"\r") in _TIER else None
        pos += len(line) + 1
    if not starts:
        return len(data), []
    return starts[0], list(zip(starts, starts[1:] + [len(data)], strict=True))


@dataclass(frozen=True)
class Part:
    """One validated part of a message, as :class:`ArchiveWriter` stores it.

    Made by the drain's validation (the reference reader's, or the plain
    fast path's), so the writer needs no parsed samples, only where each
    sample's bytes are and its epoch as written.
    """

    #: the part's bytes, ending with a newline
    data: bytes
    #: starts with a header block, so it opens a new file
    opens: bool
    #: that header block, parsed (None for a part continuing the host's file)
    header: Header | None
    #: each sample's epoch, and as written (for the index)
    times: tuple[float, ...]
    time_texts: tuple[str, ...]
    #: end of the header block, and each sample's [start, end) in ``data`` (``_spans``)
    header_end: int
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: bytes, opens: bool, header: Header | None, times: Iterable[float],
           time_texts: Iterable[str]) -> Part:
        """A part of ``text``; where its samples are is found by ``_spans``."""
        data = text if text.endswith(b"\n") else text + b"\n"
        header_end, spans = _spans(data)
        return cls(data, opens, header, tuple(times), tuple(time_texts), header_end,
                   tuple(spans))


@dataclass
class _Current:
    path: Path
    header: Header
    size: int
    idx_size: int
    #: sample times of this file and the host's recent ones (redeliveries are skipped)
    times: set[float] = field(default_factory=set)


@dataclass
class ArchiveWriter:
    """Appends messages to host files; ``sync`` makes everything durable.

    Callers ack broker messages only after ``sync`` returns. ``opener`` is
    ``open`` (tests pass one whose writes fail part-way). An append that
    fails with an exception is undone before the exception goes on; one
    interrupted by a crash is cut back when the file is next opened.
    """

    root: Path
    quarantine_dir: Path
    opener: Callable = open
    #: (file, bytes cut) of each torn append this writer repaired
    repaired: list[tuple[Path, int]] = field(default_factory=list)
    _current: dict[str, _Current] = field(default_factory=dict)
    _dirty: set[Path] = field(default_factory=set)
    _dirty_dirs: set[Path] = field(default_factory=set)
    #: new files of this batch, not visible yet: final path -> the hidden file
    #: written aside (its index beside it), renamed by ``sync`` once fsynced
    _pending: dict[Path, Path] = field(default_factory=dict)
    #: writes of the message being stored, to undo if a later part fails
    _undo: list[tuple[str, str, Path, int, int]] = field(default_factory=list)
    #: the root resolved, and each host's folder proven inside it (``_host_dir``)
    _real_root: str | None = None
    _dirs: dict[str, Path] = field(default_factory=dict)

    def current_header(self, host: str) -> Header | None:
        cur = self._load_current(host)
        return cur.header if cur else None

    def _inside(self, path: Path) -> Path:
        """``safepath.inside`` under this archive's root (resolved once per writer)."""
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return inside(self.root, path, self._real_root)

    def _host_dir(self, host: str) -> Path:
        """The host's folder, proven inside the root once per writer."""
        folder = self._dirs.get(host)
        if folder is None:
            folder = self._dirs[host] = self._inside(self.root / host)
        return folder

    def _at(self, path: Path) -> Path:
        """Where archive file ``path`` is written now: its hidden twin while it
        is a new file of this batch, else itself."""
        return self._pending.get(path, path)

    def _repair(self, path: Path) -> None:
        self._inside(path)  # a link planted in the archive never gets cut or written
        self._inside(index_path(path))
        cut = repair(path, self.quarantine_dir)
        if cut:
            self.repaired.append((path, cut))

    def _load_current(self, host: str) -> _Current | None:
        if host in self._current:
            return self._current[host]
        host_dir = self._host_dir(host)
        if not host_dir.is_dir():
            return None
        for _ in range(2):  # a repair may remove a file holding nothing complete
            files = self._files(host_dir)
            if not files:
                return None
            self._repair(self._at(files[-1][1]))
            if self._at(files[-1][1]).exists():
                break
            self._pending.pop(files[-1][1], None)
        path = files[-1][1]
        at = self._at(path)
        header = read_header(at)
        if header is None:
            return None
        idx = index_path(at)
        # samples of the recent files: a redelivery after a rotation is recognised too
        times = {e.time for _, f in files[-1 - LATE_FILES:] for e in
                 getattr(read_index(self._at(f)), "entries", ())}
        cur = _Current(path, header, at.stat().st_size,
                       idx.stat().st_size if idx.exists() else 0, times)
        self._current[host] = cur
        return cur

    def _files(self, host_dir: Path) -> list[tuple[int, Path]]:
        """The host's archive files and its new ones of this batch, by name;
        new files a crash left unrenamed (never acked: redelivered) are removed."""
        files = dict(host_files(host_dir))
        for hidden in host_dir.glob(f".*{_NEW}*"):  # .<epoch>.new and .<epoch>.new.idx
            name = hidden.name[1:].removesuffix(INDEX_SUFFIX)
            if not (name.endswith(_NEW) and name[:-len(_NEW)].isdigit()):
                continue
            final = host_dir / name[:-len(_NEW)]
            if final in self._pending:
                files[int(final.name)] = final
            else:
                hidden.unlink(missing_ok=True)
        return sorted(files.items())

    def append(self, host: str, part: Part, received: float) -> Path | None:
        """Write one validated part of a message for ``host``; returns its file.

        ``part.opens``: it starts with a header block, so it opens a new
        file. Returns None when every sample of it is already in the file
        (a redelivery): nothing is written twice.
        """
        data, header_end, spans, times = part.data, part.header_end, part.spans, part.times
        if len(spans) != len(times):
            raise ValueError(f"{len(spans)} record lines but {len(times)} samples read")
        if part.opens:
            return self._open_new(host, data, header_end, spans, times, part.header, received)
        cur = self._load_current(host)
        if cur is None:
            raise ValueError(f"no archive file with a header for host {host!r}")
        if self._at(cur.path).stat().st_size != cur.size:  # a failed append left bytes
            self._repair(self._at(cur.path))
            self._current.pop(host)
            cur = self._load_current(host)
            if cur is None:
                raise ValueError(f"archive file of host {host!r} lost its header")
        if times and all(t in cur.times for t in times):
            return None
        new_day = rotation_name(int(cur.path.name), list(times))
        if new_day is not None:  # the first sample after 00:00 UTC closes the day's file
            return self._next_day(host, cur, new_day, data, header_end, spans, times, received)
        size = cur.size
        lines = "".join(f"{text} {size + a} {size + b}\n"
                        for text, (a, b) in zip(part.time_texts, spans, strict=True))
        undo = ("append", host, self._at(cur.path), cur.size, cur.idx_size)
        self._write_both(cur, data, lines.encode())
        self._undo.append(undo)
        cur.times.update(times)
        return cur.path

    def begin(self) -> None:
        """A message starts: what it writes from here on is undone as one."""
        self._undo = []

    def rollback(self) -> None:
        """Undo every write since ``begin``: a later part of the message failed,
        and the message goes to quarantine whole, so none of it stays archived."""
        for kind, host, path, size, idx_size in reversed(self._undo):
            try:
                if kind == "new":  # never renamed: sync comes between messages
                    tmp = self._pending.pop(path, path)
                    self._dirty.discard(tmp)
                    tmp.unlink(missing_ok=True)
                    index_path(tmp).unlink(missing_ok=True)
                else:
                    os.truncate(path, size)
                    os.truncate(index_path(path), idx_size)
            except OSError:  # the next open's repair cuts what is left
                pass
            self._current.pop(host, None)  # read back from disk when next needed
        self._undo = []

    def _write_both(self, cur: _Current, data: bytes, lines: bytes) -> None:
        at = self._at(cur.path)
        idx = index_path(at)
        try:
            with self.opener(at, "ab") as fh:
                fh.write(data)
            with self.opener(idx, "ab") as fh:
                fh.write(lines)
        except Exception:
            for path, size in ((at, cur.size), (idx, cur.idx_size)):
                try:  # undo; if this fails too, the next append's repair cuts it
                    os.truncate(path, size)
                except OSError:
                    pass
            raise
        cur.size += len(data)
        cur.idx_size += len(lines)
        self._dirty.add(at)

    def _next_day(self, host: str, cur: _Current, name: int, data: bytes, header_end: int,
                  spans: Sequence[tuple[int, int]], times: Sequence[float], received: float
                  ) -> Path | None:
        """Open the new day's file: the host's current header block, then ``data``."""
        at = self._at(cur.path)
        index = read_index(at)
        head_end = (index.header_end if index and index.header_end is not None
                    else index.entries[0].start if index and index.entries else 0)
        with open(at, "rb") as fh:
            head = fh.read(head_end)
        uptime = cur.header.uptime
        boot = (index.entries[0].time - uptime
                if index and index.entries and uptime is not None else None)
        head = carried_header(head, boot, times[0])
        n = len(head)
        return self._open_new(host, head + data, n + header_end,
                              [(a + n, b + n) for a, b in spans], times, cur.header, received,
                              name=name)

    def _open_new(self, host: str, data: bytes, header_end: int,
                  spans: Sequence[tuple[int, int]], times: Sequence[float], header: Header,
                  received: float, name: int | None = None) -> Path | None:
        host_dir = self._host_dir(host)
        host_dir.mkdir(parents=True, exist_ok=True)
        prev = self._load_current(host)  # repaired before it stops being current
        if prev is not None and not times and prev.size == len(data) \
                and self._at(prev.path).read_bytes() == data:
            return None  # the same header-only message again
        if name is None:
            name = int(times[0]) if times else int(received)
        new_times = set(times)
        while True:
            path = self._inside(host_dir / str(name))
            if (path not in self._pending and not path.exists()
                    and not path.with_name(path.name + GZ).exists()):
                break
            index = read_index(self._at(path))
            if new_times and index and index.drain \
                    and new_times <= {e.time for e in index.entries}:
                return None  # a redelivered header message: already archived
            name += 1  # one header per file: a different file of the same second
        index = Index([IndexEntry(t, a, b) for t, (a, b) in zip(times, spans, strict=True)],
                      header_end=header_end)
        text = index.text()
        # written aside, made durable and visible by ``sync`` with the batch's
        # other new files: a file is whole or absent, never half there
        tmp = path.with_name(f".{path.name}{_NEW}")
        try:
            with self.opener(index_path(tmp), "wb") as fh:
                fh.write(text.encode())
            with self.opener(tmp, "wb") as fh:
                fh.write(data)
        except Exception:
            tmp.unlink(missing_ok=True)
            index_path(tmp).unlink(missing_ok=True)
            raise
        self._pending[path] = tmp
        self._dirty.add(tmp)
        seen = prev.times if prev is not None else set()
        self._current[host] = _Current(path, header, len(data), len(text),
                                       seen | {e.time for e in index.entries})
        self._dirty_dirs.update({host_dir, self.root})
        self._undo.append(("new", host, path, 0, 0))
        return path

    def sync(self) -> None:
        """Every file written since the last sync made durable, the batch's new
        files renamed into place, then every directory that gained a file made
        durable; raises if any fsync fails (nothing may be acked then).

        The fsyncs run side by side (``SYNC_THREADS`` at once, so at most that
        many descriptors are open): the file system commits concurrent
        fsyncs together, one after another it pays a journal commit each:
        with 10,000 hosts a batch touches a file per message, and after
        00:00 UTC opens one per message (measured: about 200 fsyncs/s one by
        one, thousands side by side). A new file is renamed only once its
        bytes and its index's are durable, index first (a data file never
        exists without its index): a crash before the directories' fsync
        loses at most the names of files whose messages were not acked.
        """
        files = [t for path in self._dirty for t in (path, index_path(path))]
        _fsync_all(files)
        for path, tmp in list(self._pending.items()):
            os.replace(index_path(tmp), index_path(path))
            os.replace(tmp, path)
            del self._pending[path]
        _fsync_all(list(self._dirty_dirs))  # after the files they name
        self._dirty.clear()
        self._dirty_dirs.clear()


#: suffix of a new archive file written aside (``.<epoch>.new``, ``.<epoch>.new.idx``)
_NEW = ".new"
#: fsyncs in flight at once in ``ArchiveWriter.sync`` (each holds one descriptor)
SYNC_THREADS = 32


def _fsync_all(targets: list[Path]) -> None:
    """fsync every target, ``SYNC_THREADS`` at a time; the first error is raised
    once all have been tried."""
    if len(targets) <= 1:
        for target in targets:
            fsync_path(target)
        return
    with ThreadPoolExecutor(min(SYNC_THREADS, len(targets))) as pool:
        for _ in pool.map(fsync_path, targets):
            pass


def _range_files(root: Path, start: float, end: float, lo: float,
                 hosts: Iterable[str] | Callable[[str], bool] | None = None,
                 ) -> Iterator[tuple[str, Path, Index | None]]:
    """``(host, file, index)`` of every archive file that may hold samples with
    lo <= time < end: indexed files whose samples reach ``lo``, unindexed ones
    by their names' epochs (index None), and a few files opened after ``end``
    (a replayed spool appends old samples to the newest file). ``hosts``: the
    host directories by name, or a test on each directory's name."""
    root = Path(root)
    if not root.is_dir():
        return
    if hosts is None or callable(hosts):
        dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and (hosts is None or hosts(p.name)))
    else:
        dirs = [d for d in (inside(root, root / h) for h in sorted(set(hosts))) if d.is_dir()]
    for host_dir in dirs:
        files = host_files(host_dir)
        later = 0
        for i, (epoch, path) in enumerate(files):
            if epoch >= end:
                later += 1
                if later > LATE_FILES:
                    break
            index = read_index(path)
            if index is not None and (index.drain or index.entries):
                if index.entries and max(e.time for e in index.entries) >= lo:
                    yield host_dir.name, path, index
                continue
            if epoch >= end or i + 1 < len(files) and files[i + 1][0] <= lo:
                continue
            yield host_dir.name, path, None


def read_chunks(root: Path, start: float, end: float, lookback: float,
                skipped: list[ParseIssue] | None = None,
                hosts: Iterable[str] | Callable[[str], bool] | None = None
                ) -> Iterator[Chunk]:
    """Raw text of every host (or of ``hosts``) with start - lookback <= time < end.

    An indexed file yields only the bytes of its samples in the range, with
    the file's header and boot time (from its first sample) attached; a file
    without an index (imported long ago) is yielded in pieces and filtered
    by time later. No chunk exceeds ``HPCPERF_CHUNK_MAX_BYTES``; what had to
    be skipped for that (a giant sample or line) is added to ``skipped``.
    ``hosts``, when given, picks the host directories to read: their names, or
    a test on each name.
    """
    skipped = skipped if skipped is not None else []
    for _, path, index in _range_files(root, start, end, start - lookback, hosts):
        if index is None:
            yield from _pieces(path, skipped)
        else:
            yield from _slice(path, index, start - lookback, start, end, skipped)


@dataclass
class HostSamples:
    """What the archive holds for one host in a range, from its indexes alone."""

    host: str
    #: (epoch, bytes) of each indexed sample with start <= time < end, in time order
    samples: list[tuple[float, int]] = field(default_factory=list)
    #: bytes of the sample before ``start`` (within the lookback) a reader also reads
    before_bytes: int = 0
    #: bytes of files without an index touching the range (read whole, in pieces)
    unindexed_bytes: int = 0


def range_samples(root: Path, start: float, end: float, lookback: float,
                  hosts: Iterable[str] | None = None) -> Iterator[HostSamples]:
    """Per host, the samples ``read_chunks`` would read for the range and their
    sizes, without reading any sample: how big a piece of work is, and which
    samples exist (to compare with what is loaded)."""
    lo = start - lookback
    current: HostSamples | None = None
    before: tuple[float, int] | None = None
    for host, path, index in _range_files(root, start, end, lo, hosts):
        if current is None or current.host != host:
            if current is not None:
                yield _finish(current, before)
            current, before = HostSamples(host), None
        if index is None:
            current.unindexed_bytes += archive_size(path)
            continue
        size = None
        for k, e in enumerate(index.entries):
            if not lo <= e.time < end:
                continue
            if e.end is not None:
                n = e.end - e.start
            else:
                if size is None:
                    size = archive_size(path)
                n = (index.entries[k + 1].start if k + 1 < len(index.entries) else size) - e.start
            if e.time >= start:
                current.samples.append((e.time, n))
            elif before is None or e.time > before[0]:
                before = (e.time, n)
    if current is not None:
        yield _finish(current, before)


def _finish(host: HostSamples, before: tuple[float, int] | None) -> HostSamples:
    host.samples.sort()
    host.before_bytes = before[1] if before else 0
    return host


def _picks(times: list[float], lo: float, start: float, end: float) -> list[int]:
    """Entries in [start, end), and the one sample before it within lookback."""
    if all(a <= b for a, b in zip(times, times[1:], strict=False)):
        i, j = bisect_left(times, start), bisect_left(times, end)
        return list(range(i - 1 if i > 0 and times[i - 1] >= lo else i, j))
    # late samples appended out of order: pick each one in range
    picks = [k for k, t in enumerate(times) if start <= t < end]
    before = [(t, k) for k, t in enumerate(times) if lo <= t < start]
    return sorted(picks + [max(before)[1]]) if before else picks


def _slice(path: Path, index: Index, lo: float, start: float, end: float,
           skipped: list[ParseIssue]) -> Iterator[Chunk]:
    entries = index.entries
    picks = _picks([e.time for e in entries], lo, start, end)
    if not picks:
        return
    header = read_header(path)
    if header is None:
        return
    limit = chunk_max_bytes()
    size = archive_size(path)
    ranges: list[list[int]] = []
    for k in picks:
        first = entries[k].start
        stop = entries[k].end if entries[k].end is not None else (
            entries[k + 1].start if k + 1 < len(entries) else size)
        if stop - first > limit:
            skipped.append(ParseIssue(str(path), 0, f"bytes {first}-{stop}",
                                      "sample over HPCPERF_CHUNK_MAX_BYTES, skipped"))
            continue
        if ranges and ranges[-1][1] == first and stop - ranges[-1][0] <= limit:
            ranges[-1][1] = stop
        else:
            ranges.append([first, stop])
    uptime = header.uptime
    boot = entries[0].time - uptime if uptime is not None else None
    with archive_open(path) as fh:
        batch: list[bytes] = []
        at = None
        for first, stop in ranges:
            fh.seek(first)
            part = fh.read(stop - first)
            if batch and sum(map(len, batch)) + len(part) > limit:
                yield _chunk(batch, header, boot, f"{path}@{at}")
                batch = []
            at = first if not batch else at
            batch.append(part)
        if batch:
            yield _chunk(batch, header, boot, f"{path}@{at}")


def _chunk(parts: list[bytes], header: Header | None, boot: float | None, source: str) -> Chunk:
    # line numbers of issues are relative to the slice; the source names it
    return Chunk(b"".join(parts).decode("utf-8", errors="replace"), header, boot, source)


def _pieces(path: Path, skipped: list[ParseIssue]) -> Iterator[Chunk]:
    """An unindexed file in pieces of about the chunk bound, cut before a
    record or header line; a piece that does not start with its own header
    carries the header in effect (and its boot time)."""
    limit = chunk_max_bytes()
    header: Header | None = None
    boot: float | None = None
    head_lines: list[str] | None = None  # the header block being read
    batch: list[bytes] = []
    size, at, batch_header, batch_boot = 0, 0, None, None
    with archive_open(path) as fh:
        for item in iter_lines(fh, limit):
            if isinstance(item, Oversized):
                skipped.append(ParseIssue(str(path), 0, item.head[:120].decode(
                    "utf-8", errors="replace"), item.describe(str(path))))
                continue
            offset, line = item
            first = line[:1]
            record = first.isdigit() and first.isascii()
            if first == b"$" and head_lines is None:
                head_lines = []
            elif record and head_lines is not None:  # the block's first sample
                header, head_lines = parse_header(head_lines), None
                epoch = line.split(b" ", 1)[0]
                boot = (float(epoch) - header.uptime if header is not None
                        and header.uptime is not None and _EPOCH.fullmatch(epoch) else None)
            if head_lines is not None and line.strip() and first != b"#":
                head_lines.append(line.decode("utf-8", errors="replace").rstrip("\r\n"))
            boundary = record or first == b"$" and len(head_lines or ()) == 1
            if batch and (size + len(line) > limit and boundary or size > 2 * limit):
                yield _chunk(batch, batch_header, batch_boot, f"{path}@{at}")
                batch, size = [], 0
            if not batch:
                at = offset
                own = first == b"$"
                batch_header, batch_boot = (None, None) if own else (header, boot)
            batch.append(line)
            size += len(line)
    if batch:
        yield _chunk(batch, batch_header, batch_boot, f"{path}@{at}")


def read_range(root: Path, start: float, end: float, lookback: float,
               hosts: Callable[[str], bool] | None = None) -> Iterator[RawStats]:
    """Reference reader of a range (validation, tools): parsed per chunk."""
    for chunk in read_chunks(root, start, end, lookback, hosts=hosts):
        raw = read_raw(chunk.text, source=chunk.source, header=chunk.header)
        raw.samples = [s for s in raw.samples if start - lookback <= s.time < end]
        yield raw
