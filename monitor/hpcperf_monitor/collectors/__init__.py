"""Collectors, one module per type, and the registry the sampler uses.

Each ``collect(root)`` returns ``{device: values}`` in the order of its
schema in :data:`hpcperf_monitor.schemas.ALL`, or raises
:class:`CollectorUnavailable` when its source is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hpcperf_monitor.collectors import block, cpu, mem, net, numa, ps, vm
from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows

Collector = Callable[[Path], Rows]

#: type name -> collector, in the order types are written to the header.
REGISTRY: dict[str, Collector] = {
    m.TYPE: m.collect for m in (block, cpu, mem, net, numa, ps, vm)
}

__all__ = ["REGISTRY", "Collector", "CollectorUnavailable", "Rows"]
