"""Memory per NUMA node from ``node*/meminfo``, else ``/proc/meminfo`` as node 0.

Values are KB as the kernel prints them (``U=KB``), huge page counts are
plain counts. ``MemUsed`` is computed as ``MemTotal - MemFree`` in both
cases (the per-node file has its own MemUsed with the same meaning; the
global file has none). The global file has no ``FilePages``: the kernel
derives its ``Cached`` as file pages minus swap cache minus buffers, so we
add those back to get the per-node meaning.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import Rows, key_values, numbered_dirs, pick, read_text
from hpcperf_monitor.schemas import MEM

TYPE = MEM.type


def _row(values: dict[str, str]) -> tuple[int, ...]:
    total, free = int(values.get("MemTotal", 0)), int(values.get("MemFree", 0))
    values["MemUsed"] = str(total - free)
    return pick(values, MEM.names)


def collect(root: Path = Path("/")) -> Rows:
    nodes = numbered_dirs(root / "sys/devices/system/node", "node")
    if nodes:
        return {n: _row(key_values(read_text(p / "meminfo"), skip=2)) for n, p in nodes}
    values = key_values(read_text(root / "proc/meminfo"))
    if "FilePages" not in values:
        values["FilePages"] = str(
            sum(int(values.get(k, 0)) for k in ("Cached", "SwapCached", "Buffers"))
        )
    return {"0": _row(values)}
