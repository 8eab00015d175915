"""Core hardware counters per CPU through perf events: instructions, cycles, FLOPs.

Device: the CPU number. Values are counts since the daemon opened the
events (its first sample reads about 0), scaled when the kernel
multiplexes them:

- ``instructions``, ``cycles``: the generic hardware events;
- ``ref_cycles``: cycles at the fixed reference clock while not halted, the
  generic event (Intel's fixed counter); where the kernel has none (AMD),
  the ``msr`` PMU's ``mperf``, the architectural counter of the same thing;
- ``flops``: FP operations retired, sum of count x FLOPs per count over the
  CPU's events (:func:`perf.fp_events`: Intel FP_ARITH_INST_RETIRED on
  Skylake and later, AMD PMCx003 on Zen 1-5). FP16/AMX work is not counted.

Where the CPU has no known FP event, no core PMU (most VMs), or an event
cannot be opened (permission: root or CAP_PERFMON), the whole type is
unavailable with the reason logged once: no column is ever a stand-in 0.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors import perf
from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.collectors.perf import EventSpec

TYPE = "pmc"

INSTRUCTIONS = EventSpec(perf.PERF_TYPE_HARDWARE, perf.PERF_COUNT_HW_INSTRUCTIONS,
                         name="instructions")
CYCLES = EventSpec(perf.PERF_TYPE_HARDWARE, perf.PERF_COUNT_HW_CPU_CYCLES, name="cycles")
REF_CYCLES = EventSpec(perf.PERF_TYPE_HARDWARE, perf.PERF_COUNT_HW_REF_CPU_CYCLES,
                       name="ref-cycles")


def core_pmu(root: Path) -> perf.Pmu:
    found = perf.pmus(root)
    if "cpu" not in found:
        why = ("hybrid cpu_core/cpu_atom PMUs are not supported" if "cpu_core" in found
               else "a VM without a virtual PMU?")
        raise CollectorUnavailable(f"no core PMU: {root / perf.PMU_DIR / 'cpu'} is absent ({why})")
    return perf.Pmu(found["cpu"])


def ref_cycles_event(root: Path, counters: perf.Counters, cpu: int) -> EventSpec:
    """The generic ref-cycles event, else ``msr/mperf``, whichever the kernel has."""
    if counters.supported(REF_CYCLES, cpu):
        return REF_CYCLES
    msr = perf.pmus(root).get("msr")
    if msr is not None and perf.Pmu(msr).has_event("mperf"):
        return perf.Pmu(msr).event("mperf")
    return REF_CYCLES  # opening it again raises the kernel's reason


class Pmc(perf.PerfCollector):
    """Per-CPU core counters, open for the daemon's lifetime."""

    TYPE = TYPE

    def plan(self, root: Path, counters: perf.Counters) -> perf.Plan:
        model = perf.cpu_model(root)
        fp = perf.fp_events(model)
        if fp is None:
            raise CollectorUnavailable(f"no FP-operation event known for {model}")
        core = core_pmu(root)
        flops = [(weight, core.spec(event, f"fp {event}")) for event, weight in fp]
        cpus = perf.online_cpus(root)
        ref = ref_cycles_event(root, counters, cpus[0])
        columns = [[(1, INSTRUCTIONS)], [(1, CYCLES)], [(1, ref)], flops]
        return {
            str(cpu): [[(w, counters.open(spec, cpu)) for w, spec in terms] for terms in columns]
            for cpu in cpus
        }


def collect(root: Path = Path("/")) -> Rows:
    """One-off reads have no counters: only the daemon keeps them open."""
    raise CollectorUnavailable(perf.DAEMON_ONLY)
