"""Import an existing HPCPerfStats / tacc_stats archive: ``<dir>/<host>/<epoch>[.gz]``.

Each file is streamed once, in pieces of at most ``HPCPERF_CHUNK_MAX_BYTES``
(memory is bounded whatever the file holds, a 50 MB line included), read
with the reference reader, copied into our archive under the checked short
host name (:mod:`safepath`), given its ``.idx`` sample index and fsynced;
the hours of its samples are returned, and reported to Dagster as
``raw_stats_archive`` partitions (by the ``import_archive_job``, or by
``hpcperf import-archive`` into ``$DAGSTER_HOME``'s instance), so
``host_data`` rebuilds them. Bad lines go to
quarantine with file and line number and the rest of the file is imported:
bad lines, lines over the bound and samples whose epoch lies outside the window
(``HPCPERF_EPOCH_EARLIEST`` .. import time + ``HPCPERF_EPOCH_MAX_AHEAD_S``) are left
out of the copy, so they are never loaded, and kept in quarantine. A host
folder that is not a host name, or a file that fails, is quarantined with
the reason and the import goes on. Importing the same directory twice
changes nothing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.rawformat import Header, read_raw
from hpcperf_monitor.state import atomic_write

from hpcperfstats.archive import quarantine
from hpcperfstats.archive.safepath import host_folder, inside
from hpcperfstats.archive.store import index_path, read_index
from hpcperfstats.clusters import cluster_config
from hpcperfstats.ingest.chunks import Oversized, chunk_max_bytes, iter_lines
from hpcperfstats.ingest.drain import epoch_problem, epoch_window, hour_key


@dataclass
class ImportResult:
    files: int = 0
    skipped: int = 0
    samples: int = 0
    bytes: int = 0
    issues: int = 0
    #: host folders or files set aside whole (with the reason, in quarantine)
    rejected: int = 0
    hosts: set[str] = field(default_factory=set)
    hours: set[str] = field(default_factory=set)


@dataclass
class _Copy:
    """What one source file became: its kept bytes in a temporary file."""

    tmp: Path
    index: list[str] = field(default_factory=list)
    size: int = 0
    samples: int = 0
    issues: list[str] = field(default_factory=list)
    issue_text: list[str] = field(default_factory=list)
    hours: set[str] = field(default_factory=set)


def _source_files(src: Path) -> Iterator[tuple[Path, list[Path]]]:
    for host_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        files = []
        for path in sorted(host_dir.iterdir()):
            epoch = path.name.removesuffix(".gz")
            if epoch.isascii() and epoch.isdigit() and path.is_file():
                files.append(path)
        yield host_dir, files


def _pieces(fh, limit: int, source: str, out: _Copy) -> Iterator[list[bytes]]:
    """Lines of a file in pieces cut before a record line once ``limit`` bytes
    are reached (so at most ``limit`` and one sample; 2 x ``limit`` at worst)."""
    piece: list[bytes] = []
    size = 0
    for item in iter_lines(fh, limit):
        if isinstance(item, Oversized):
            out.issues.append(item.describe(source))
            out.issue_text.append(item.head.decode("utf-8", errors="replace"))
            continue
        line = item[1].decode("utf-8", errors="replace").encode("utf-8")
        if piece and (size + len(line) > limit and line[:1].isdigit() or size > 2 * limit):
            yield piece
            piece, size = [], 0
        piece.append(line)
        size += len(line)
    if piece:
        yield piece


def _copy_piece(piece: list[bytes], lineno: int, header: Header | None, source: str,
                window: tuple[float, float], fh, out: _Copy) -> Header | None:
    """Parse one piece, write its kept lines, index its good samples; the
    header in effect after it."""
    raw = read_raw([ln.decode("utf-8") for ln in piece], source=source, header=header,
                   first_line=lineno)
    drop: set[int] = set()  # lines left out of the copy (kept in quarantine)
    for issue in raw.issues:
        _note(out, str(issue), issue.text)
        drop.add(issue.line - lineno)
    starts = [s.line - lineno for s in raw.samples] + [len(piece)]
    for k, sample in enumerate(raw.samples):
        problem = epoch_problem(sample.time_text, window)
        if problem:  # its record and data lines stay out of the copy
            _note(out, f"{source}:{sample.line}: {problem}", piece[starts[k]].decode())
            for i in range(starts[k], starts[k + 1]):
                if i > starts[k] and piece[i][:1] == b"$":  # a header after it stays
                    break
                drop.add(i)
    offsets = {}
    for i, line in enumerate(piece):
        if i in drop:
            continue
        offsets[i] = out.size
        fh.write(line)
        out.size += len(line)
    for k, sample in enumerate(raw.samples):
        if starts[k] not in drop:
            out.index.append(f"{sample.time_text} {offsets[starts[k]]}\n")
            out.samples += 1
            out.hours.add(hour_key(sample.time))
    return raw.headers[-1] if raw.headers else header


def _note(out: _Copy, issue: str, text: str) -> None:
    out.issues.append(issue)
    if sum(map(len, out.issue_text)) < chunk_max_bytes():  # kept text is bounded too
        out.issue_text.append(text[:4096])


def _copy(path: Path, target_dir: Path, window: tuple[float, float]) -> _Copy:
    """Stream ``path`` into a temporary file beside its target."""
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".import-", suffix=".tmp")
    out = _Copy(Path(tmp))
    limit = chunk_max_bytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with os.fdopen(fd, "wb") as dst, opener(path, "rb") as src:
            header, lineno = None, 1
            for piece in _pieces(src, limit, str(path), out):
                header = _copy_piece(piece, lineno, header, str(path), window, dst, out)
                lineno += len(piece)
            dst.flush()
            os.fsync(dst.fileno())
    except BaseException:
        out.tmp.unlink(missing_ok=True)
        raise
    return out


def _target(archive_dir: Path, host: str, epoch: str) -> Path:
    """Where a file goes: ``<host>/<epoch>``, or the next free name when the
    drain already wrote a file of that name (never overwritten)."""
    name = int(epoch)
    while True:
        target = inside(archive_dir, Path(archive_dir) / host / str(name))
        index = read_index(target)
        closed = target.with_name(target.name + ".gz").exists()  # a compressed day holds it
        if not closed and (not target.exists() or index is None or not index.drain):
            return target
        name += 1


def import_file(path: Path, host: str, archive_dir: Path, quarantine_dir: Path,
                result: ImportResult) -> None:
    """Copy one source file into the archive, indexed (see the module's doc)."""
    target = _target(archive_dir, host, path.name.removesuffix(".gz"))
    target.parent.mkdir(parents=True, exist_ok=True)
    out = _copy(path, target.parent, epoch_window(time.time()))
    try:
        if out.issues:
            result.issues += len(out.issues)
            quarantine.put(quarantine_dir, "\n".join(out.issue_text).encode(),
                           f"import: {len(out.issues)} bad lines", str(path), out.issues)
        result.hours.update(out.hours)
        index = "".join(out.index).encode()
        if (target.exists() and target.stat().st_size == out.size
                and index_path(target).exists() and index_path(target).read_bytes() == index):
            result.skipped += 1
            return
        index_path(target).unlink(missing_ok=True)  # never a new file with an old index
        os.replace(out.tmp, target)
        atomic_write(index_path(target), index)  # fsyncs the folder too
    finally:
        out.tmp.unlink(missing_ok=True)
    result.files += 1
    result.samples += out.samples
    result.bytes += out.size
    result.hosts.add(host)


def import_archive(src: Path, archive_dir: Path, quarantine_dir: Path) -> ImportResult:
    """Copy every ``<host>/<epoch>`` file of ``src`` into the archive, indexed."""
    result = ImportResult()
    for host_dir, files in _source_files(Path(src)):
        try:
            host = host_folder(host_dir.name)
        except ValueError as exc:
            result.rejected += len(files)
            for path in files:
                quarantine.put(quarantine_dir, str(path).encode(), f"import: {exc}", str(path))
            continue
        for path in files:
            try:
                import_file(path, host, archive_dir, quarantine_dir, result)
            except Exception as exc:  # one file, one unit of failure
                result.rejected += 1
                quarantine.put(quarantine_dir, str(path).encode(),
                               f"import failed: {type(exc).__name__}: {str(exc)[:300]}", str(path))
    return result


def run(argv: list[str] | None = None) -> tuple[Path, ImportResult, str]:
    """``hpcperf import-archive``'s work: import the directory named, say what came in.

    Telling Dagster which hours it archived is the command's other half, in
    ``hpcperf_dagster.import_command`` (the core imports nothing built on it).
    """
    parser = argparse.ArgumentParser(prog="hpcperf import-archive", description=__doc__)
    parser.add_argument("directory", type=Path, help="existing archive: <host>/<epoch> files")
    parser.add_argument("--cluster", default=None,
                        help="the cluster whose archive receives it (default HPCPERF_CLUSTER)")
    args = parser.parse_args(argv)
    cluster = cluster_config(args.cluster)
    res = import_archive(args.directory, cluster.archive_dir, cluster.quarantine_dir)
    print(f"imported {res.files} files ({res.skipped} already there) of {len(res.hosts)} hosts: "
          f"{res.samples} samples, {res.bytes} bytes, {res.issues} bad lines quarantined, "
          f"{res.rejected} files set aside; {len(res.hours)} hours archived")
    return args.directory, res, cluster.name
