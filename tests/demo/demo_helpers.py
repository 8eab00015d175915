"""Helpers of the demo-cluster tests: parse a cluster's messages, read counters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hpcperf_demo.cluster import DemoConfig, DemoJob, DemoPlan, make_plan
from hpcperf_demo.generate import DemoMessage, iter_messages
from hpcperf_monitor.rawformat import Header, Sample, read_raw


@dataclass
class Parsed:
    """The default demo cluster: plan, messages and every host's parsed samples."""

    cfg: DemoConfig
    plan: DemoPlan
    messages: list[DemoMessage]
    samples: dict[str, list[Sample]]  # host -> samples in time order
    issues: list
    headers: dict[str, int]  # host -> messages that carried a header


def parse_cluster(cfg: DemoConfig) -> Parsed:
    """Generate ``cfg``'s messages and parse each with its host's current header."""
    plan = make_plan(cfg)
    messages = list(iter_messages(cfg, plan))
    current: dict[str, Header] = {}
    samples: dict[str, list[Sample]] = defaultdict(list)
    headers: dict[str, int] = defaultdict(int)
    issues = []
    for msg in messages:
        raw = read_raw(msg.text, source=msg.host, header=current.get(msg.host))
        issues += raw.issues
        if raw.headers:
            current[msg.host] = raw.headers[-1]
            headers[msg.host] += 1
        samples[msg.host] += raw.samples
    return Parsed(cfg, plan, messages, dict(samples), issues, dict(headers))


def counter_delta(a: Sample, b: Sample, type_: str, event: str) -> int:
    """b - a of one event summed over a type's devices (no roll-over handling)."""
    idx = b.header.schemas[type_].names.index(event)
    return sum(b.rows[type_][d][idx] - a.rows[type_][d][idx] for d in b.rows[type_])


def gauge(s: Sample, type_: str, event: str) -> int:
    idx = s.header.schemas[type_].names.index(event)
    return sum(v[idx] for v in s.rows[type_].values())


BUSY = ("user", "nice", "system", "irq", "softirq")


def busy_cores(a: Sample, b: Sample) -> float:
    """Busy cores between two samples, as the pipeline computes it from jiffies."""
    ticks = sum(counter_delta(a, b, "cpu", e) for e in BUSY)
    return ticks / ((b.time - a.time) * 100)


def net_rate(a: Sample, b: Sample) -> float:
    names = b.header.schemas["net"].names
    rx, tx = names.index("rx_bytes"), names.index("tx_bytes")
    total = 0
    for dev, values in b.rows["net"].items():
        if dev != "lo":
            before = a.rows["net"][dev]
            total += values[rx] - before[rx] + values[tx] - before[tx]
    return total / (b.time - a.time)


def proc_mem_bytes(s: Sample) -> int:
    used = gauge(s, "mem", "MemUsed") - gauge(s, "mem", "FilePages") - gauge(s, "mem", "Slab")
    return 1024 * used


def job_samples(demo: Parsed, job: DemoJob, host: str) -> list[Sample]:
    return [s for s in demo.samples[host] if s.jobid == job.jobid]


def check_ground_truth(demo: Parsed) -> int:
    """Assert every job host's counters average to the plan's truth within 1 %; count.

    Busy cores and network rate are time averages of per-interval rates over
    the job's samples; memory is the mean of MemUsed - FilePages - Slab.
    """
    checked = 0
    for job in demo.plan.jobs:
        for host in job.hosts:
            samples = job_samples(demo, job, host)
            if len(samples) < 2:
                continue
            pairs = list(zip(samples, samples[1:], strict=False))
            span = samples[-1].time - samples[0].time
            cores = sum(busy_cores(a, b) * (b.time - a.time) for a, b in pairs) / span
            net = sum(net_rate(a, b) * (b.time - a.time) for a, b in pairs) / span
            mem = sum(proc_mem_bytes(s) for s in samples) / len(samples)
            truth = job.busy_cores[host]
            assert abs(cores - truth) <= 0.01 * truth + 1e-6, (job.jobid, host)
            assert abs(net / job.net_bytes_per_s[host] - 1) <= 0.01, (job.jobid, host)
            assert abs(mem / job.mem_used_bytes[host] - 1) <= 0.01, (job.jobid, host)
            assert max(proc_mem_bytes(s) for s in samples) <= 1.01 * job.mem_used_bytes[host]
            checked += 1
    return checked
