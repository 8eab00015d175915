"""NUMA allocation counters per node from ``node*/numastat``."""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import (
    CollectorUnavailable,
    Rows,
    key_values,
    numbered_dirs,
    pick,
    read_text,
)
from hpcperf_monitor.schemas import NUMA

TYPE = NUMA.type


def collect(root: Path = Path("/")) -> Rows:
    nodes = numbered_dirs(root / "sys/devices/system/node", "node")
    if not nodes:
        raise CollectorUnavailable(f"{root / 'sys/devices/system/node'}: no NUMA nodes")
    return {n: pick(key_values(read_text(p / "numastat")), NUMA.names) for n, p in nodes}
