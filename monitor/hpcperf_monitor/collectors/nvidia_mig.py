"""MIG instances of NVIDIA GPUs through NVML: memory used and total, SM count.

A GPU with MIG enabled is split into instances that jobs get separately;
this type has one row per MIG device (a compute instance), named
``<GPU index>.<GPU instance id>.<compute instance id>``, the triple
``nvidia-smi`` shows in its MIG devices table. The parent GPU keeps its
``nvidia_gpu`` row, whose memory already is the sum over its instances:
that is why instances are a type of their own, never added to the GPUs'.

NVML gives per instance its memory and its attributes (``sm_count``: how
big a slice of the GPU it is); utilisation, power, temperature and clocks
are not reported per instance (power and temperature are the physical
GPU's, in ``nvidia_gpu``). Instance handles are looked up on every sample
because instances can be destroyed and re-created while the daemon runs.
No MIG instance on the node: the type is unavailable and left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.collectors.nvml import Nvml, NvmlCollector, value

TYPE = "nvidia_mig"


def mig_enabled(s: Nvml, handle: Any) -> bool:
    nv = s.nv
    assert nv is not None
    try:
        current, _pending = nv.nvmlDeviceGetMigMode(handle)
    except nv.NVMLError_NotSupported:  # before Ampere, or a board without MIG
        return False
    return current == nv.NVML_DEVICE_MIG_ENABLE


def read_instances(s: Nvml, device: str, handle: Any) -> Rows:
    """Rows of the MIG devices of one GPU, in the order of ``schemas.NVIDIA_MIG``."""
    nv = s.nv
    assert nv is not None
    if not mig_enabled(s, handle):
        return {}
    rows: Rows = {}
    for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except nv.NVMLError_NotFound:  # an empty slot
            continue
        gi = nv.nvmlDeviceGetGpuInstanceId(mig)
        ci = nv.nvmlDeviceGetComputeInstanceId(mig)
        name = f"{device}.{gi}.{ci}"
        mem = s.get(name, "memory", nv.nvmlDeviceGetMemoryInfo, mig)
        attrs = s.get(name, "sm_count", nv.nvmlDeviceGetAttributes, mig)
        rows[name] = (value(mem, "used"), value(mem, "total"),
                      value(attrs, "multiprocessorCount"))
    return rows


class NvidiaMig(NvmlCollector):
    """Every MIG instance's row; none at all is unavailable, not an empty type."""

    def __call__(self, root: Path) -> Rows:
        rows = self.nvml.rows(read_instances)
        if not rows:
            raise CollectorUnavailable("NVML: no MIG instances (MIG disabled on every GPU)")
        return rows


def collect(root: Path = Path("/")) -> Rows:
    return NvidiaMig.read_once(root)
