"""NVIDIA GPUs through NVML: utilisation, memory, power, energy, temperature, SM clock.

One row per GPU, device = its NVML index (see :mod:`.nvml` for how that
relates to Slurm's numbers in the ``%gpus`` marks). All values are
gauges read at sample time except ``energy``, NVML's total energy in mJ
since the driver was loaded (a 64-bit counter: the pipeline turns it into
watts over the interval, and a driver reload reads as a new series).

Where a GPU cannot report a field, NVML says NotSupported and the field is
written as 0, logged once per GPU and field: ``energy`` on GPUs before
Volta (then ``power`` is the only power reading), ``utilization`` on a
GPU with MIG enabled (NVML has no whole-GPU utilisation then; its
instances are in ``nvidia_mig``). A GPU with MIG enabled still gets this
row: its memory is the sum over its instances (NVML tells root only; for
other users NoPermission, written as 0), power and temperature are the
physical GPU's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcperf_monitor.collectors.common import Rows
from hpcperf_monitor.collectors.nvml import Nvml, NvmlCollector, value

TYPE = "nvidia_gpu"


def read_gpu(s: Nvml, device: str, handle: Any) -> Rows:
    """The row of one GPU, in the order of ``schemas.NVIDIA_GPU``."""
    nv = s.nv
    assert nv is not None
    util = s.get(device, "utilization", nv.nvmlDeviceGetUtilizationRates, handle)
    mem = s.get(device, "memory", nv.nvmlDeviceGetMemoryInfo, handle)
    return {device: (
        value(util, "gpu"),
        value(mem, "used"),
        value(mem, "total"),
        value(s.get(device, "power", nv.nvmlDeviceGetPowerUsage, handle)),
        value(s.get(device, "energy", nv.nvmlDeviceGetTotalEnergyConsumption, handle)),
        value(s.get(device, "temperature", nv.nvmlDeviceGetTemperature, handle,
                    nv.NVML_TEMPERATURE_GPU)),
        value(s.get(device, "sm_clock", nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM)),
    )}


class NvidiaGpu(NvmlCollector):
    """Every GPU's row; the numbering is checked once per NVML session."""

    def __call__(self, root: Path) -> Rows:
        if self.nvml.nv is None:
            self.nvml.open()
            self.nvml.check_numbering()
        return self.nvml.rows(read_gpu)


def collect(root: Path = Path("/")) -> Rows:
    return NvidiaGpu.read_once(root)
