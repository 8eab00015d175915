"""Archive days: each host's file closes at the first sample after 00:00 UTC,
and closed files are compressed with gzip.

gzip, not zstd: the standard library reads it (no extra wheel on the
pipeline), TACC's tools and ``zcat`` read it, and ``import-archive`` already
took ``<epoch>.gz`` sources. A compressed file is ``<epoch>.gz`` beside its
index ``<epoch>.gz.idx``; the index keeps the offsets of the uncompressed
bytes, so readers seek in the decompressed stream (``archive_open``).

Only files that are no longer a host's newest are compressed: the drain
appends to (and repairs) the newest file only, so a compressed file is never
written again. Compression is crash-safe: the ``.gz`` is written aside,
fsynced, renamed, indexed and checked against the original before the
plain file and its index go; while both exist readers take the plain one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

from hpcperf_monitor.state import atomic_write

DAY = 86400
GZ = ".gz"


def day_start(epoch: float) -> int:
    """00:00 UTC of the day holding ``epoch``."""
    return int(epoch // DAY * DAY)


def rotation_name(file_epoch: int, times: list[float]) -> int | None:
    """Name of the new file when a sample at ``times`` closes the file named
    ``file_epoch`` (a sample on a later UTC day), else None.

    The new file is named by its first sample, but never before the new day's
    midnight, so a message spanning midnight does not rotate twice.
    """
    if not times or day_start(max(times)) <= day_start(file_epoch):
        return None
    return max(int(times[0]), day_start(max(times)))


def carried_header(head: bytes, boot: float | None, first: float) -> bytes:
    """The header block repeated at the top of the new day's file, its
    ``$uptime`` moved on to the new file's first sample (``first``).

    Readers take a file's boot time as its first sample minus ``$uptime``;
    the old uptime would date the boot a day later and read as a reboot, so
    the first interval after midnight would be lost.
    """
    if boot is None:
        return head
    # a late sample dated before the boot (a wrong clock, a hostile node) must not
    # write a negative uptime, which no reader accepts: 0 reads as a new boot
    uptime = max(0, round(first - boot))
    lines = head.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"$uptime "):
            lines[i] = b"$uptime %d" % uptime + (b"\r" if line.endswith(b"\r") else b"")
    return b"\n".join(lines)


def is_compressed(path: Path) -> bool:
    return path.name.endswith(GZ)


def plain_name(path: Path) -> str:
    return path.name.removesuffix(GZ)


def archive_open(path: Path) -> BinaryIO:
    """An archive file for reading, as its uncompressed bytes (seekable)."""
    return gzip.open(path, "rb") if is_compressed(path) else open(path, "rb")


def archive_size(path: Path) -> int:
    """Uncompressed size: gzip's trailer holds it modulo 4 GiB (a day file is
    far smaller)."""
    if not is_compressed(path):
        return path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return struct.unpack("<I", fh.read(4))[0]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or directory by its path (a directory after a rename or a new
    entry in it, so the entry survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compress_file(path: Path, level: int = 6) -> Path:
    """Replace archive file ``path`` (and its index) by ``<path>.gz``; crash-safe.

    ``mtime=0`` makes the bytes depend on the content only, so a day
    compressed again exports with the same checksums.
    """
    gz = path.with_name(path.name + GZ)
    tmp = path.with_name(f".{gz.name}.tmp")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0,
                              filename="") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        fsync_path(tmp)
        os.replace(tmp, gz)
    finally:
        tmp.unlink(missing_ok=True)
    idx = path.with_name(path.name + ".idx")
    if idx.exists():
        atomic_write(gz.with_name(gz.name + ".idx"), idx.read_bytes())
    if _content_digest(gz) != sha256(path):
        raise OSError(f"compressed copy {gz} does not match {path}; plain file kept")
    path.unlink()
    idx.unlink(missing_ok=True)
    fsync_path(path.parent)
    return gz


def _content_digest(gz: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(gz, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_entries(host_dir: Path) -> list[tuple[int, Path]]:
    """A host's archive files, oldest first: ``<epoch>`` or ``<epoch>.gz``
    (the plain one while a compression is half done)."""
    found: dict[int, Path] = {}
    for path in host_dir.iterdir():
        name = plain_name(path)
        if not (name.isascii() and name.isdigit() and path.is_file()):
            continue
        if int(name) not in found or not is_compressed(path):
            found[int(name)] = path
    return sorted(found.items())


def closed_files(root: Path, day: int) -> tuple[list[Path], list[Path]]:
    """Files of UTC day ``day`` (named in [day, day + 1 d)): (closed, still open).

    A host's newest file is open (the drain may still append late samples).
    """
    closed, open_ = [], []
    if not root.is_dir():
        return closed, open_
    for host_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = archive_entries(host_dir)
        for i, (epoch, path) in enumerate(files):
            if day <= epoch < day + DAY:
                (closed if i + 1 < len(files) else open_).append(path)
    return closed, open_


def compress_day(root: Path, day: int) -> tuple[list[Path], list[Path]]:
    """Compress the closed files of ``day``; (compressed files, still open files)."""
    closed, open_ = closed_files(Path(root), day)
    return [p if is_compressed(p) else compress_file(p) for p in closed], open_
