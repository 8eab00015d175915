"""Paging and fault counters from ``/proc/vmstat`` (one row, device ``-``).

``pgpgin``/``pgpgout`` are already in KB in this file despite their names.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import Rows, key_values, pick, read_text
from hpcperf_monitor.schemas import VM

TYPE = VM.type


def collect(root: Path = Path("/")) -> Rows:
    return {"-": pick(key_values(read_text(root / "proc/vmstat")), VM.names)}
