"""How each raw type becomes ``host_data`` rows: summed over devices, kept, or both.

One table of rules, also written out in ``docs/host-data.md``. Host-wide sums
use the device ``''``. Types not listed keep their devices, because a sum of
unknown gauges (temperatures, frequencies) would be a wrong number. Types the
dashboards show per device (GPUs, IB ports) get both the host-wide sum and
one row per device, so a job's total needs no GROUP BY and a slow port or an
idle GPU is still visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeRule:
    """``aggregate``: sum over devices into device ''; ``per_device``: keep each
    device's rows too; ``unsummed``: events never summed (kept per device only);
    ``skip``: not loaded into host_data."""

    aggregate: bool = True
    per_device: bool = False
    exclude_devices: frozenset[str] = field(default_factory=frozenset)
    unsummed: frozenset[str] = field(default_factory=frozenset)
    skip: bool = False
    why: str = ""


_IB = "data words (4 B) and packets per port; host sum for job totals, ports for imbalance"

RULES: dict[str, TypeRule] = {
    "cpu": TypeRule(why="jiffies summed over CPUs: rates read as cores busy"),
    "mem": TypeRule(why="per-NUMA-node meminfo summed to the node's totals"),
    "numa": TypeRule(why="NUMA hit/miss counters summed over NUMA nodes"),
    "net": TypeRule(
        exclude_devices=frozenset({"lo"}),
        why="bytes and packets summed over interfaces; loopback is not network traffic",
    ),
    "block": TypeRule(why="I/O counters summed over whole disks"),
    "ps": TypeRule(why="one device '-' per node"),
    "vm": TypeRule(why="one device '-' per node"),
    "vfs": TypeRule(why="one device '-' per node"),
    "sysv_shm": TypeRule(why="one device '-' per node"),
    "tmpfs": TypeRule(why="bytes and files used summed over tmpfs mounts"),
    "llite": TypeRule(why="Lustre client bytes and metadata ops summed over file systems"),
    "nfs": TypeRule(why="NFS client bytes and ops summed over mounts"),
    "rapl": TypeRule(why="package and DRAM energy summed over sockets: node power in W"),
    "pmc": TypeRule(why="instructions, cycles, flops summed over CPUs"),
    "imc": TypeRule(why="memory controller bytes summed over sockets: node memory bandwidth"),
    "ib": TypeRule(per_device=True, why=_IB + " (legacy 32-bit counters)"),
    "ib_ext": TypeRule(per_device=True, why=_IB),
    "opa": TypeRule(per_device=True, why=_IB + " (Omni-Path)"),
    "nvidia_gpu": TypeRule(
        per_device=True,
        unsummed=frozenset({"temperature", "sm_clock"}),
        why="utilisation, memory and power summed (GPU-% busy, bytes, W) and kept per GPU; "
        "temperature and clock per GPU only",
    ),
    "nvidia_mig": TypeRule(
        aggregate=False,
        why="MIG instances (device <gpu>.<gi>.<ci>) per instance only: their memory is "
        "already in their GPU's nvidia_gpu row and host sum; each instance is its own job's",
    ),
    "cgroup": TypeRule(
        aggregate=False,
        why="one device per Slurm job sharing the node: never summed across jobs",
    ),
    "cgroup_mem": TypeRule(
        aggregate=False,
        why="a job cgroup without CPU accounting (jobacct_gather/linux): memory and I/O "
        "per job, CPU absent",
    ),
    "cgroup_cpu": TypeRule(
        aggregate=False,
        why="a job cgroup without a memory cgroup: CPU and I/O per job, memory absent",
    ),
    "proc": TypeRule(skip=True, why="per-process rows belong to job_series, not host_data"),
    "procexe": TypeRule(skip=True, why="per-process executables and CPU time: read from the "
                        "archive by job_applications, not host_data"),
}

DEFAULT = TypeRule(aggregate=False, why="unknown type: devices kept as they are")


def rule(type_: str) -> TypeRule:
    return RULES.get(type_, DEFAULT)


def skipped_types() -> frozenset[str]:
    """Types never loaded into host_data (dropped before parsing their values)."""
    return frozenset(t for t, r in RULES.items() if r.skip)
