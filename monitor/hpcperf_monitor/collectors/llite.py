"""Lustre client counters per file system from the llite ``stats`` files.

Lustre 2.12 and newer keep them under ``/sys/kernel/debug/lustre/llite``;
older clients under ``/proc/fs/lustre/llite``. Each mount's directory is
``<fsname>-<superblock address>``; the device is the fs name. A line reads
``name count samples [unit] min max sum [sumsq]``: for ``read_bytes`` and
``write_bytes`` we take the sum (bytes), for the others the count.
Mounting one file system twice adds both mounts into its row.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.schemas import LLITE

TYPE = LLITE.type
_BASES = ("sys/kernel/debug/lustre/llite", "proc/fs/lustre/llite")
_SUMMED = {"read_bytes", "write_bytes"}


def parse_stats(text: str) -> tuple[int, ...]:
    values = dict.fromkeys(LLITE.names, 0)
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] not in values:
            continue
        if words[0] in _SUMMED:
            values[words[0]] = int(words[6]) if len(words) >= 7 else 0
        else:
            values[words[0]] = int(words[1])
    return tuple(values.values())


def collect(root: Path = Path("/")) -> Rows:
    rows: Rows = {}
    for rel in _BASES:
        try:
            mounts = sorted((root / rel).iterdir())
        except OSError:
            continue
        for mount in mounts:
            try:
                values = parse_stats((mount / "stats").read_text())
            except OSError:
                continue
            fsname = mount.name.rsplit("-", 1)[0]
            old = rows.get(fsname)
            rows[fsname] = values if old is None else tuple(a + b for a, b in zip(old, values))
        if rows:
            return rows
    raise CollectorUnavailable(f"{root}: no Lustre llite stats")
