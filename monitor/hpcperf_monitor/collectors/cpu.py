"""Per-CPU time from ``/proc/stat``.

The kernel reports ``cpuN`` times in USER_HZ ticks. USER_HZ is 100 on every
Linux architecture we run on (it is a fixed ABI value, unlike the kernel's
internal HZ), so one tick is one centisecond, matching the schema's ``U=cs``.
Only online CPUs appear in ``/proc/stat``; an offlined CPU simply has no row.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import CPU

TYPE = CPU.type
_N = len(CPU.events)  # user nice system idle iowait irq softirq


def collect(root: Path = Path("/")) -> Rows:
    rows: Rows = {}
    for line in read_text(root / "proc/stat").splitlines():
        # "cpu  ..." is the all-CPU total; "cpu12 ..." is one CPU
        if not line.startswith("cpu") or line[3] == " ":
            continue
        words = line.split()
        values = words[1:1 + _N]
        values += ["0"] * (_N - len(values))  # pre-2.6 kernels lack iowait/irq/softirq
        rows[words[0][3:]] = tuple(map(int, values))
    if not rows:
        raise CollectorUnavailable(f"{root / 'proc/stat'}: no cpuN lines")
    return rows
