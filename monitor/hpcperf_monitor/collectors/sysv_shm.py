"""System V shared memory in use from ``/proc/sysvipc/shm`` (device ``-``).

Its columns are named on the first line; we take ``size`` of every segment.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import SYSV_SHM

TYPE = SYSV_SHM.type


def collect(root: Path = Path("/")) -> Rows:
    path = root / "proc/sysvipc/shm"
    lines = read_text(path).splitlines()
    if not lines or "size" not in lines[0].split():
        raise CollectorUnavailable(f"{path}: no header line")
    col = lines[0].split().index("size")
    sizes = [int(words[col]) for words in map(str.split, lines[1:]) if len(words) > col]
    return {"-": (sum(sizes), len(sizes))}
