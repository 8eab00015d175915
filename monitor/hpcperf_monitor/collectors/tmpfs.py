"""Space and inodes used on every tmpfs mount (``/proc/mounts`` + ``statvfs``).

tmpfs lives in memory, so a job filling ``/dev/shm`` or ``/tmp`` uses RAM
that ``mem`` shows only as shared pages. Mount points are taken under the
root path, so a recorded tree's directories stand in for the mounts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import TMPFS

TYPE = TMPFS.type


def usage(path: str) -> tuple[int, int]:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree


def collect(root: Path = Path("/"), statfs: Callable[[str], tuple[int, int]] = usage) -> Rows:
    rows: Rows = {}
    for line in read_text(root / "proc/mounts").splitlines():
        words = line.split()
        if len(words) < 3 or words[2] != "tmpfs":
            continue
        mount = words[1]
        local = str(root / mount.lstrip("/")) if mount != "/" else str(root)
        try:
            rows[mount] = statfs(local.replace("\\040", " "))
        except OSError:
            continue  # unmounted meanwhile, or not present in a recorded tree
    if not rows:
        raise CollectorUnavailable(f"{root / 'proc/mounts'}: no tmpfs mounts")
    return rows
