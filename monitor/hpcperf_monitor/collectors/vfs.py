"""Kernel object counts from ``/proc/sys/fs`` (one row, device ``-``).

``dentry_use`` is dentries minus unused ones (``dentry-state``),
``file_use`` allocated file handles minus free ones (``file-nr``) and
``inode_use`` inodes minus free ones (``inode-nr``): what is in use now.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import VFS

TYPE = VFS.type
_FILES = ("dentry-state", "file-nr", "inode-nr")


def collect(root: Path = Path("/")) -> Rows:
    values = []
    for name in _FILES:
        path = root / "proc/sys/fs" / name
        words = read_text(path).split()
        if len(words) < 2:
            raise CollectorUnavailable(f"{path}: unexpected format")
        values.append(int(words[0]) - int(words[1]))
    return {"-": tuple(values)}
