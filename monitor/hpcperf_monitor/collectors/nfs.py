"""NFS client counters per mount point from ``/proc/self/mountstats``.

``bytes:`` gives ``normalread normalwrite directread directwrite ...``: read
and write bytes are what applications moved, buffered plus O_DIRECT. ``ops``
is the sum of the per-operation RPC counts (the first number after
``OPNAME:`` in the ``per-op statistics`` block). The device is the mount
point as the kernel escapes it (a space is ``\\040``), so it is one word.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import NFS

TYPE = NFS.type


def parse_mountstats(text: str) -> Rows:
    rows: Rows = {}
    mount: str | None = None
    read = write = ops = 0
    in_ops = False

    def close() -> None:
        if mount is not None:
            rows[mount] = (read, write, ops)

    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "device":
            close()
            mount = None
            # device <src> mounted on <dir> with fstype <type> ...
            if len(words) >= 8 and words[7] in ("nfs", "nfs4"):
                mount, read, write, ops, in_ops = words[4], 0, 0, 0, False
        elif mount is None:
            continue
        elif words[0] == "bytes:" and len(words) >= 5:
            read = int(words[1]) + int(words[3])
            write = int(words[2]) + int(words[4])
        elif words[0] == "per-op":
            in_ops = True
        elif in_ops and words[0].endswith(":") and len(words) >= 2:
            ops += int(words[1])
    close()
    return rows


def collect(root: Path = Path("/")) -> Rows:
    rows = parse_mountstats(read_text(root / "proc/self/mountstats"))
    if not rows:
        raise CollectorUnavailable(f"{root / 'proc/self/mountstats'}: no NFS mounts")
    return rows
