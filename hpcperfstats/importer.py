"""Import an existing HPCPerfStats / tacc_stats archive: ``<dir>/<host>/<epoch>[.gz]``.

Each file is read once with the reference reader (bad lines go to
quarantine with file and line number, the file is still imported), copied
into our archive under the short host name, given its ``.idx`` sample index,
fsynced, and the hours of its samples are marked pending so ``host_data``
rebuilds them (the sensor, or a Dagster backfill over those hours).
Importing the same directory twice changes nothing.
"""

from __future__ import annotations

import argparse
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.rawformat import read_raw
from hpcperf_monitor.state import atomic_write

from hpcperfstats import quarantine
from hpcperfstats.accounting import short_host
from hpcperfstats.archive import INDEX_SUFFIX
from hpcperfstats.config import settings
from hpcperfstats.drain import hour_key
from hpcperfstats.pending import Pending


@dataclass
class ImportResult:
    files: int = 0
    skipped: int = 0
    samples: int = 0
    bytes: int = 0
    issues: int = 0
    hosts: set[str] = field(default_factory=set)
    hours: set[str] = field(default_factory=set)


def _line_starts(text: str) -> list[int]:
    """Byte offset of each line as ``read_raw`` numbers them (from 1)."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append(pos)
        pos += len(line.encode("utf-8"))
    return out


def _source_files(src: Path) -> list[tuple[str, str, Path]]:
    out = []
    for host_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for path in sorted(host_dir.iterdir()):
            epoch = path.name.removesuffix(".gz")
            if epoch.isdigit() and path.is_file():
                out.append((short_host(host_dir.name), epoch, path))
    return out


def import_archive(src: Path, archive_dir: Path, quarantine_dir: Path,
                   state_dir: Path) -> ImportResult:
    """Copy every ``<host>/<epoch>`` file of ``src`` into the archive, indexed."""
    result = ImportResult()
    for host, epoch, path in _source_files(Path(src)):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8", errors="replace")
        data = text.encode("utf-8")  # what the index offsets count
        raw = read_raw(text, source=str(path))
        if raw.issues:
            result.issues += len(raw.issues)
            quarantine.put(quarantine_dir, "\n".join(i.text for i in raw.issues).encode(),
                           f"import: {len(raw.issues)} bad lines", str(path),
                           [str(i) for i in raw.issues])
        target_dir = Path(archive_dir) / host
        target = target_dir / epoch
        result.hours.update(hour_key(s.time) for s in raw.samples)
        if target.exists() and target.stat().st_size == len(data):
            result.skipped += 1
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        starts = _line_starts(text)
        index = "".join(f"{s.time_text or s.time} {starts[s.line - 1]}\n" for s in raw.samples)
        atomic_write(target, data)
        atomic_write(target.with_name(epoch + INDEX_SUFFIX), index.encode())
        fd = os.open(target_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        result.files += 1
        result.samples += len(raw.samples)
        result.bytes += len(data)
        result.hosts.add(host)
    Pending(state_dir, "host_data").mark(result.hours)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf import-archive", description=__doc__)
    parser.add_argument("directory", type=Path, help="existing archive: <host>/<epoch> files")
    args = parser.parse_args(argv)
    cfg = settings()
    res = import_archive(args.directory, cfg.archive_dir, cfg.quarantine_dir, cfg.state_dir)
    print(f"imported {res.files} files ({res.skipped} already there) of {len(res.hosts)} hosts: "
          f"{res.samples} samples, {res.bytes} bytes, {res.issues} bad lines quarantined; "
          f"{len(res.hours)} hours marked for host_data")
    return 0
