"""``ib_ext`` port counters; the reader is shared in :mod:`infiniband`."""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import Rows
from hpcperf_monitor.collectors.infiniband import collect_kind
from hpcperf_monitor.schemas import IB_EXT

TYPE = IB_EXT.type


def collect(root: Path = Path("/")) -> Rows:
    return collect_kind(root, TYPE)
