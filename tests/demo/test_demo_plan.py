"""The demo job plan: every scripted behaviour present, exclusive nodes, ground truth."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hpcperf_demo.cluster import DemoConfig, make_plan

GiB = 2**30
BEHAVIOURS = {
    "cpu_bound", "half_cores", "memory_heavy", "idle_nodes", "network_heavy", "failed",
    "midnight", "timeout", "cancelled", "filler", "gpu_training", "gpu_idle",
}  # fmt: skip


def test_default_plan_has_every_behaviour_once():
    plan = make_plan(DemoConfig())
    assert {j.behaviour for j in plan.jobs} == BEHAVIOURS
    for b in BEHAVIOURS - {"filler"}:
        assert len(plan.by_behaviour(b)) == 1, b
    # 16 CPU nodes and the GPU node, after them
    assert len(plan.hosts) == 17 and plan.hosts[0] == "c001-001" and plan.hosts[-2] == "c001-016"
    assert plan.hosts[-1] == "g001-001"
    assert plan.wrap_host == "c001-001"


def test_scripted_jobs_say_what_they_do():
    plan = make_plan(DemoConfig())
    (cpu,) = plan.by_behaviour("cpu_bound")
    assert set(cpu.busy_cores.values()) == {16.0} and cpu.state == "COMPLETED"
    (mem,) = plan.by_behaviour("memory_heavy")
    assert mem.mem_used_bytes[mem.hosts[0]] == pytest.approx(0.9 * 64 * GiB, rel=1e-4)
    (net,) = plan.by_behaviour("network_heavy")
    assert min(net.net_bytes_per_s.values()) >= 1e9
    (failed,) = plan.by_behaviour("failed")
    assert (failed.state, failed.exit_code, failed.elapsed_s) == ("FAILED", "1:0", 900)
    (timeout,) = plan.by_behaviour("timeout")
    assert timeout.state == "TIMEOUT" and timeout.elapsed_s == timeout.timelimit_s
    (cancelled,) = plan.by_behaviour("cancelled")
    assert cancelled.state == "CANCELLED"
    (night,) = plan.by_behaviour("midnight")
    midnight = datetime(2026, 11, 21, tzinfo=UTC)
    assert night.start < midnight < night.end
    running = [j for j in plan.jobs if j.end is None]
    assert running and all(j.state == "RUNNING" for j in running)
    assert all(j.elapsed_s == (DemoConfig().end - j.start).total_seconds() for j in running)


def test_jobs_never_share_a_node_and_stay_in_range():
    cfg = DemoConfig()
    plan = make_plan(cfg)
    by_host: dict[str, list] = {}
    for job in plan.jobs:
        assert cfg.start <= job.start < cfg.end
        assert job.ncpus == 16 * job.nnodes and job.submit < job.start
        assert (job.ngpus > 0) == (job.partition == "gpu") == job.hosts[0].startswith("g")
        assert job.req_mem_bytes == 60 * GiB * job.nnodes
        for h in job.hosts:
            by_host.setdefault(h, []).append((job.start, job.end or cfg.end))
    for spans in by_host.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end < start


def test_plan_is_deterministic_and_seed_dependent():
    a, b = make_plan(DemoConfig(seed=3)), make_plan(DemoConfig(seed=3))
    assert a.jobs == b.jobs
    assert make_plan(DemoConfig(seed=4)).jobs != a.jobs


def test_small_or_short_clusters_still_plan():
    plan = make_plan(DemoConfig(nodes=3, hours=2))
    assert plan.idle_hosts == ["c001-003"]
    assert "cpu_bound" in {j.behaviour for j in plan.jobs}
    assert not plan.by_behaviour("midnight")  # 12:00-14:00 crosses no midnight
    big = make_plan(DemoConfig(nodes=130))
    assert big.hosts[64] == "c002-001" and len(big.idle_hosts) >= 130 // 16


def test_gpu_jobs_come_last_and_say_what_their_gpus_do():
    """The GPU node's jobs are numbered after every other job (47 before them), with
    no random draw: the training job keeps 4 GPUs busy, the other holds 2 idle."""
    plan = make_plan(DemoConfig())
    train, idle = plan.jobs[-2:]
    assert (train.jobid, train.behaviour, idle.jobid, idle.behaviour) == (
        "1000048", "gpu_training", "1000049", "gpu_idle")
    assert len(plan.jobs) == 49 and not [j for j in plan.jobs[:-2] if j.gpus]
    # 20 % .. 45 % of 288 samples: 58 .. 130, 72 x 300 s = 6 h; 4 GPUs = 24 GPU-hours
    assert (train.hosts, train.ngpus, train.elapsed_s) == (("g001-001",), 4, 6 * 3600)
    assert [u.util_pct for u in train.gpus.values()] == [92, 88, 95, 85]
    assert train.start == datetime(2026, 11, 20, 16, 50, tzinfo=UTC)
    assert (idle.ngpus, idle.elapsed_s, idle.gpus["1"].util_pct) == (2, 44 * 300, 0)
    # no GPU node in the fixture shape (the benchmarks' nodes) unless asked for
    assert DemoConfig.of_shape("fixture").gpu_hosts() == []
    assert DemoConfig(gpu_nodes=0).hosts()[-1] == "c001-016"


def test_config_rejects_naive_start():
    with pytest.raises(ValueError):
        DemoConfig(start=datetime(2026, 11, 20))


def test_anchoring_at_an_end_shifts_the_plan_and_nothing_else():
    """``ending_at`` (what `hpcperf demo` uses with now): the range ends at the anchor
    rounded down to the interval; jobs, users and ground truth are the default plan's,
    every time moved by the same amount (the values: tests/jobs/test_job_tables.py)."""
    cfg = DemoConfig.ending_at(datetime(2026, 9, 3, 17, 22, 41, tzinfo=UTC))
    assert cfg.end == datetime(2026, 9, 3, 17, 20, tzinfo=UTC)
    assert cfg.time_at(cfg.samples - 1) == datetime(2026, 9, 3, 17, 15, tzinfo=UTC)
    base, moved = make_plan(DemoConfig()), make_plan(cfg)
    delta = cfg.start - DemoConfig().start
    assert [j.jobid for j in moved.jobs] == [j.jobid for j in base.jobs]
    for a, b in zip(base.jobs, moved.jobs, strict=True):
        assert b.start - a.start == b.submit - a.submit == delta
        assert (a.end is None) == (b.end is None)
        assert (b.user, b.hosts, b.state, b.busy_cores, b.mem_used_bytes, b.elapsed_s) == (
            a.user, a.hosts, a.state, a.busy_cores, a.mem_used_bytes, a.elapsed_s)
    with pytest.raises(ValueError):
        DemoConfig.ending_at(datetime(2026, 9, 3))


def test_demo_partitions_start_at_the_data(monkeypatch):
    """`hpcperf demo` starts Dagster's partitions on the demo's first day (not a year
    of empty partitions: "0% filled"), unless HPCPERF_PARTITION_START says otherwise."""
    from hpcperf_demo.run import partition_start

    cfg = DemoConfig.ending_at(datetime(2026, 9, 3, 5, 0, tzinfo=UTC))
    monkeypatch.delenv("HPCPERF_PARTITION_START", raising=False)
    assert partition_start(cfg) == "2026-09-02"
    monkeypatch.setenv("HPCPERF_PARTITION_START", "2026-06-01")
    assert partition_start(cfg) == "2026-06-01"
