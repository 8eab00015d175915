"""``cgroup_mem``: Slurm job cgroups whose CPU time cannot be read.

Slurm with ``jobacct_gather/linux`` makes a job's memory cgroup but no
``cpuacct`` one (cgroup v1): memory and I/O are the job's own, CPU is not
known. A type of its own keeps that CPU absent instead of a 0 (see
:mod:`hpcperf_monitor.collectors.cgroup`, which reads both).
"""

from __future__ import annotations

from hpcperf_monitor.collectors.cgroup import collect_mem as collect
from hpcperf_monitor.schemas import CGROUP_MEM

TYPE = CGROUP_MEM.type

__all__ = ["TYPE", "collect"]
