"""The roofline of the demo's memory-bound job, from the database the pipeline filled.

Its node counts FLOPs and memory bytes (``pmc``/``imc``): 4 busy cores x 0.25
GFLOP/s = 1e9 FLOP/s and 4 x 10 GB/s + 40 MB/s of OS traffic = 4.004e10 B/s,
on a node of 1.28 TFLOP/s and 200 GB/s (the demo's peaks).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import psycopg
import pytest
from demo_db import DemoDB
from hpcperf_demo.generate import peak_settings

from hpcperfstats.hostdata.series import host_series
from hpcperfstats.jobs.roofline import Peaks, roofline


def test_memory_bound_job_sits_left_of_the_ridge_and_agrees_with_its_metrics(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("memory_heavy")[0]
    peaks = Peaks(*(float(v) for v in peak_settings(demo_db.cfg).values()))
    assert (peaks.flops, peaks.mem_bw) == (1.28e12, 2e11)  # 16 x 2.5 GHz x 32; 200 GB/s
    with psycopg.connect(demo_db.url) as conn:
        # rates of the intervals inside the job: the first ends one interval after its start
        series = host_series(conn, job.hosts, job.start + timedelta(seconds=demo_db.cfg.interval),
                             job.end, ["flops", "mem_bw"])
        metrics = dict(conn.execute(
            "SELECT metric, value FROM job_metrics WHERE jobid = %s AND metric IN "
            "('flops_avg', 'mem_bw_avg')", (job.jobid,)).fetchall())
    point = roofline(series, peaks).filter(pl.col("scope") == "job").row(0, named=True)
    assert point["flops"] == pytest.approx(1e9, rel=1e-6)
    assert point["mem_bw"] == pytest.approx(4.004e10, rel=1e-6)
    assert point["intensity"] == pytest.approx(1e9 / 4.004e10, rel=1e-6)  # 0.025 FLOP/B
    # left of the ridge (6.4 FLOP/B): the roof is 0.025 x 200 GB/s = 5 GFLOP/s, 20 % reached
    assert point["bound"] == "memory"
    assert point["attainable"] == pytest.approx(1e9 / 4.004e10 * 2e11, rel=1e-6)
    assert point["of_attainable"] == pytest.approx(4.004e10 / 2e11, rel=1e-6)
    # the job's metrics say the same (they weigh the first and last interval by the
    # part inside the job: the samples are taken up to a second off the grid)
    assert metrics["flops_avg"] == pytest.approx(1e9, rel=1e-4)
    assert metrics["mem_bw_avg"] == pytest.approx(4.004e10, rel=1e-4)
