"""Memory-controller traffic through uncore perf events: bytes read and written.

Device: ``<pmu>.<cpu>``, one per memory-controller PMU and socket (the CPUs
of the PMU's ``cpumask``). Values are bytes since the daemon opened the
events, from CAS commands of 64 bytes:

- Intel servers: ``uncore_imc_N`` with ``cas_count_read``/``cas_count_write``
  (Sandy Bridge-EP to Granite Rapids); where those are absent, the
  free-running ``uncore_imc_free_running_N`` ``read``/``write`` (or a
  client's ``data_read(s)``/``data_write(s)``). Counts are converted with
  the events' own ``.scale`` x ``.unit`` (6.103515625e-5 MiB = 64 B).
  Only one family is used, so no traffic is counted twice.
- AMD Zen 4 and later (Linux 6.7+): ``amd_umc_N``, ``umc_cas_cmd.rd``/``.wr``
  (event 0x0a, rdwrmask 1/2), 64 B each, as perf's own bandwidth metrics.

Anything else (Zen 2/3, VMs): unavailable, with the reason logged once.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from hpcperf_monitor.collectors import perf
from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.collectors.perf import EventSpec

TYPE = "imc"

#: (read, write) sysfs event names, first found wins per PMU
INTEL_PAIRS = (("cas_count_read", "cas_count_write"), ("read", "write"),
               ("data_read", "data_write"), ("data_reads", "data_writes"))
#: Intel PMU families in the order preferred; only the first one found is used
INTEL_KINDS = (re.compile(r"^uncore_imc(_\d+)?$"), re.compile(r"^uncore_imc_free_running(_\d+)?$"))
AMD_UMC = re.compile(r"^amd_umc_\d+$")
AMD_EVENTS = ("event=0x0a,rdwrmask=0x1", "event=0x0a,rdwrmask=0x2")  # umc_cas_cmd.rd/.wr
CAS_BYTES = Fraction(64)

#: a PMU to count on: (pmu, (read event, bytes per count), (write event, bytes per count))
Channel = tuple[perf.Pmu, tuple[EventSpec, Fraction], tuple[EventSpec, Fraction]]


def _intel(pmu: perf.Pmu) -> Channel | None:
    for read, write in INTEL_PAIRS:
        if pmu.has_event(read) and pmu.has_event(write):
            # a CAS moves one 64-byte line: the count's meaning where .unit is missing
            default = CAS_BYTES if read.startswith("cas_count") else None
            return (pmu, (pmu.event(read), pmu.bytes_per_count(read, default)),
                    (pmu.event(write), pmu.bytes_per_count(write, default)))
    return None


def _amd(pmu: perf.Pmu) -> Channel:
    return (pmu, (pmu.spec(AMD_EVENTS[0], "umc_cas_cmd.rd"), CAS_BYTES),
            (pmu.spec(AMD_EVENTS[1], "umc_cas_cmd.wr"), CAS_BYTES))


def channels(root: Path) -> list[Channel]:
    """The memory-controller PMUs to count on, in PMU number order."""
    found = perf.pmus(root)
    names = sorted(found, key=perf.pmu_order)
    for kind in INTEL_KINDS:
        usable = [c for c in (_intel(perf.Pmu(found[n])) for n in names if kind.match(n)) if c]
        if usable:
            return usable
    amd = [_amd(perf.Pmu(found[n])) for n in names if AMD_UMC.match(n)]
    if amd:
        return amd
    raise CollectorUnavailable(
        f"no memory-controller PMU known on this CPU: no uncore_imc_* with read/write events "
        f"nor amd_umc_* under {root / perf.PMU_DIR}")


class Imc(perf.PerfCollector):
    """Per-controller, per-socket CAS bytes, open for the daemon's lifetime."""

    TYPE = TYPE

    def plan(self, root: Path, counters: perf.Counters) -> perf.Plan:
        plan: perf.Plan = {}
        for pmu, (read, read_bytes), (write, write_bytes) in channels(root):
            cpus = pmu.cpus()
            if not cpus:
                raise CollectorUnavailable(f"{pmu.path / 'cpumask'}: no CPU to count on")
            for cpu in cpus:
                plan[f"{pmu.name}.{cpu}"] = [[(read_bytes, counters.open(read, cpu))],
                                             [(write_bytes, counters.open(write, cpu))]]
        return plan


def collect(root: Path = Path("/")) -> Rows:
    """One-off reads have no counters: only the daemon keeps them open."""
    raise CollectorUnavailable(perf.DAEMON_ONLY)
