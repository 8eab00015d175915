"""``cgroup_cpu``: Slurm job cgroups with CPU accounting but no memory cgroup.

The mirror of :mod:`hpcperf_monitor.collectors.cgroup_mem`: the job's CPU
time and I/O are its own, its memory is not known and is left out rather
than written as 0.
"""

from __future__ import annotations

from hpcperf_monitor.collectors.cgroup import collect_cpu as collect
from hpcperf_monitor.schemas import CGROUP_CPU

TYPE = CGROUP_CPU.type

__all__ = ["TYPE", "collect"]
