"""How each raw type becomes ``host_data`` rows: summed over devices or kept.

One table of rules, also written out in ``docs/host-data.md``. Host-wide sums
use the device ``''``. Types not listed keep their devices, because a sum of
unknown gauges (temperatures, frequencies) would be a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeRule:
    """``aggregate``: sum over devices; ``skip``: not loaded into host_data."""

    aggregate: bool = True
    exclude_devices: frozenset[str] = field(default_factory=frozenset)
    skip: bool = False
    why: str = ""


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
    "proc": TypeRule(skip=True, why="per-process rows belong to job_series, not host_data"),
}

DEFAULT = TypeRule(aggregate=False, why="unknown type: devices kept as they are")


def rule(type_: str) -> TypeRule:
    return RULES.get(type_, DEFAULT)
