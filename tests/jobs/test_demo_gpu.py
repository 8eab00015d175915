"""The demo's GPU jobs through the pipeline: metrics worked out by hand from the plan.

The training job holds one node's four GPUs for 6 h (72 intervals of 300 s),
busy 92 + 88 + 95 + 85 = 360 % of 400 %, with 60 + 58 + 62 + 56 = 236 GiB in use
and drawing 400 + 390 + 410 + 380 = 1580 W. The other job holds two GPUs and
keeps one at 2 %: 2 % of 200 %.
"""

from __future__ import annotations

import polars as pl
import psycopg
import pytest
from demo_db import DemoDB

GiB = 2**30


def _metrics(conn: psycopg.Connection, jobid: str) -> dict[str, tuple[float | None, str | None]]:
    rows = conn.execute("SELECT metric, value, reason FROM job_metrics WHERE jobid = %s",
                        (jobid,)).fetchall()
    return {m: (v, r) for m, v, r in rows}


def _flags(conn: psycopg.Connection, jobid: str) -> dict[str, float]:
    return dict(conn.execute("SELECT flag, value FROM job_flags WHERE jobid = %s",
                             (jobid,)).fetchall())


def test_training_job_gpu_metrics_are_the_plans(demo_db: DemoDB):
    (train,) = demo_db.plan.by_behaviour("gpu_training")
    with psycopg.connect(demo_db.url) as conn:
        job = conn.execute("SELECT ngpus, partition, elapsed_s FROM job_data WHERE jobid = %s",
                           (train.jobid,)).fetchone()
        m = _metrics(conn, train.jobid)
        flags = _flags(conn, train.jobid)
    assert job == (4, "gpu", 21600)  # AllocTRES gres/gpu=4; 6 h: 24 GPU-hours
    # busy share: (92 + 88 + 95 + 85) % / 100 / 4 GPUs allocated
    assert m["gpu_util"][0] == pytest.approx(360 / 100 / 4, abs=1e-9)
    assert m["gpu_mem_hwm_bytes"][0] == 236 * GiB
    # the node's power is its GPUs' (no RAPL on the demo nodes): 1580 W over 6 h (the
    # first interval, at rest at 240 W, counts for the under-a-second of it inside the
    # job: the samples are taken up to a second off the grid)
    assert m["power_avg_w"][0] == pytest.approx(1580.0, rel=1e-4)
    assert m["energy_j"][0] == pytest.approx(1580.0 * 21600, rel=1e-4)
    # 12 of 16 cores busy (the data loaders): no CPU flag either
    assert m["cpu_efficiency"][0] == pytest.approx(12 / 16, rel=0.01)
    assert "gpus_idle" not in flags and flags == {}


def test_idle_gpus_are_flagged_and_jobs_without_gpus_say_why(demo_db: DemoDB):
    (idle,) = demo_db.plan.by_behaviour("gpu_idle")
    (cpu,) = demo_db.plan.by_behaviour("cpu_bound")
    with psycopg.connect(demo_db.url) as conn:
        m = _metrics(conn, idle.jobid)
        flags = _flags(conn, idle.jobid)
        cpu_m = _metrics(conn, cpu.jobid)
        fired = conn.execute("SELECT jobid FROM job_flags WHERE flag = 'gpus_idle'").fetchall()
    # 2 % summed over the node's GPUs (the two it holds and two at rest), over 2 allocated
    assert m["gpu_util"][0] == pytest.approx(2 / 100 / 2, abs=1e-9)
    assert m["gpu_mem_hwm_bytes"][0] == 1 * GiB
    assert flags["gpus_idle"] == pytest.approx(0.01, abs=1e-9)
    assert fired == [(idle.jobid,)]  # on no other job of the demo
    # a job without GPUs has no GPU metric, with the reason, not 0 %
    assert cpu_m["gpu_util"] == (None, "no GPUs allocated")


def test_each_gpus_lines_are_the_plans(demo_db: DemoDB):
    """What the job page's GPU tab draws per GPU: GPU 0 at 92 %, 60 GiB, 400 W ... over the
    whole run; power from the first interval inside the job (no ramp from rest)."""
    from dashboards import timeseries
    from hpcperfstats.jobs.series import first_rate

    (train,) = demo_db.plan.by_behaviour("gpu_training")
    with psycopg.connect(demo_db.url) as conn:
        since = first_rate(train.start, timeseries.data_interval(conn, train.jobid))
        frame = timeseries.gpu_devices(conn, train.hosts, train.start, train.end, since=since)
    got = {(r["host"], r["event"]): (r["min"], r["max"]) for r in frame.group_by(
        "host", "event").agg(pl.col("value").min().alias("min"),
                             pl.col("value").max().alias("max")).iter_rows(named=True)}
    for gpu, use in train.gpus.items():
        name = f"g001-001 GPU {gpu}"
        assert got[(name, "utilization")] == (use.util_pct, use.util_pct)
        assert got[(name, "mem_used")] == (use.mem_bytes, use.mem_bytes)
        low, high = got[(name, "energy")]  # W: mJ/s as stored, in J/s
        assert low == pytest.approx(use.power_w, rel=1e-6)
        assert high == pytest.approx(use.power_w, rel=1e-6)
    assert len(got) == 4 * 3
