"""Collectors, one module per type, and the registry the sampler uses.

Each ``collect(root)`` returns ``{device: values}`` in the order of its
schema in :data:`hpcperf_monitor.schemas.ALL`, or raises
:class:`CollectorUnavailable` when its source is absent.

Collectors that keep something between samples (RAPL's unwrapped totals,
open perf events, the NVML handle, the job-id map) are built per sampler by
:data:`FACTORIES` from the host's state directory; ``REGISTRY`` holds a
stateless ``collect`` for every type all the same, for one-off reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hpcperf_monitor.collectors import (
    block,
    cgroup,
    cgroup_cpu,
    cgroup_mem,
    cpu,
    ib,
    ib_ext,
    imc,
    llite,
    mem,
    net,
    nfs,
    numa,
    nvidia_gpu,
    nvidia_mig,
    opa,
    pmc,
    proc,
    procexe,
    ps,
    rapl,
    sysv_shm,
    tmpfs,
    vfs,
    vm,
)
from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.state import read_jobmap

Collector = Callable[[Path], Rows]

_MODULES = (block, cgroup, cgroup_cpu, cgroup_mem, cpu, ib, ib_ext, imc, llite, mem, net, nfs,
            numa, nvidia_gpu, nvidia_mig, opa, pmc, proc, procexe, ps, rapl, sysv_shm, tmpfs, vfs,
            vm)


def _cgroup(reader: Callable[..., Rows]) -> Callable[[Path | None], Collector]:
    def factory(state_dir: Path | None) -> Collector:
        def collect(root: Path) -> Rows:
            return reader(root, read_jobmap(state_dir) if state_dir else None)
        return collect
    return factory


#: type name -> collector, in the order types are written to the header.
REGISTRY: dict[str, Collector] = {m.TYPE: m.collect for m in _MODULES}

#: type name -> builder of a collector that keeps state in the host's state dir.
FACTORIES: dict[str, Callable[[Path | None], Collector]] = {
    "cgroup": _cgroup(cgroup.collect),
    "cgroup_cpu": _cgroup(cgroup_cpu.collect),
    "cgroup_mem": _cgroup(cgroup_mem.collect),
    "rapl": rapl.Rapl,
    "nvidia_gpu": nvidia_gpu.NvidiaGpu,
    "nvidia_mig": nvidia_mig.NvidiaMig,
    "pmc": pmc.Pmc,
    "imc": imc.Imc,
}


def build(types: list[str], state_dir: Path | None) -> dict[str, Collector]:
    """The collectors of ``types`` for one sampler."""
    return {t: FACTORIES[t](state_dir) if t in FACTORIES else REGISTRY[t] for t in types}


__all__ = ["FACTORIES", "REGISTRY", "Collector", "CollectorUnavailable", "Rows", "build"]
