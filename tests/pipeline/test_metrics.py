"""Job metrics over derived series, with hand-made numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from hpcperfstats.metrics import METRICS, compute_job_metrics

T0 = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)


def jobs(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(
        list(rows),
        schema={"jobid": pl.Utf8, "start_time": pl.Datetime("us", "UTC"),
                "end_time": pl.Datetime("us", "UTC"), "hosts": pl.List(pl.Utf8),
                "ncpus": pl.Int32, "nnodes": pl.Int32},
    )


def series(points: list[tuple[int, str, str, float]]) -> pl.DataFrame:
    """(minutes after T0, host, series, value) -> a derived-series frame."""
    return pl.DataFrame(
        [(T0 + timedelta(minutes=m), h, s, v, "x") for m, h, s, v in points],
        schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "series": pl.Utf8,
                "value": pl.Float64, "unit": pl.Utf8},
        orient="row",
    )


def as_dict(frame: pl.DataFrame, jobid: str) -> dict[str, tuple]:
    return {r["metric"]: (r["value"], r["reason"])
            for r in frame.filter(pl.col("jobid") == jobid).iter_rows(named=True)}


def test_half_the_cores_idle_node_and_midnight():
    # job 1: two 8-core nodes, 23:00 -> 01:00 (spans midnight); n1 burns 8 cores,
    # n2 is idle; samples every 30 min, the last at 01:00 belongs to the job
    points = []
    for m in range(30, 121, 30):
        points += [(m, "n1", "cpu_busy", 8.0), (m, "n2", "cpu_busy", 0.0),
                   (m, "n1", "mem_used", 1e9 * m), (m, "n2", "mem_used", 1e8),
                   (m, "n1", "net_bw", 100.0), (m, "n2", "net_bw", 300.0)]
    # a sample before the job started and one after it ended are not the job's
    points += [(0, "n1", "cpu_busy", 99.0), (125, "n1", "cpu_busy", 99.0)]
    job = jobs({"jobid": "1", "start_time": T0, "end_time": T0 + timedelta(hours=2),
                "hosts": ["n1", "n2"], "ncpus": 16, "nnodes": 2})
    m = as_dict(compute_job_metrics(job, series(points)), "1")
    assert m["cpu_cores_avg"] == (4.0, None)  # (8 + 0) / 2 nodes
    assert m["cpu_efficiency"] == (0.5, None)  # 8 busy of 16 allocated
    assert m["mem_hwm_bytes"] == (120e9, None)
    assert m["net_bw_avg"] == (200.0, None)
    assert m["hosts_with_data"] == (1.0, None)


def test_missing_data_is_null_with_a_reason():
    job = jobs(
        {"jobid": "2", "start_time": T0, "end_time": T0 + timedelta(hours=1),
         "hosts": ["n9"], "ncpus": 8, "nnodes": 1},
        {"jobid": "3", "start_time": T0, "end_time": T0 + timedelta(minutes=2),
         "hosts": ["n1"], "ncpus": 8, "nnodes": 1},
        {"jobid": "4", "start_time": None, "end_time": T0, "hosts": [], "ncpus": 8,
         "nnodes": 1},
        {"jobid": "5", "start_time": T0, "end_time": T0 + timedelta(hours=1),
         "hosts": ["n1", "n7"], "ncpus": 16, "nnodes": 2},
    )
    # the sample at T0 opens the first interval (a rate's interval is real, never guessed)
    pts = series([(0, "n1", "cpu_busy", 9.0), (30, "n1", "cpu_busy", 6.0),
                  (60, "n1", "cpu_busy", 2.0)])
    out = compute_job_metrics(job, pts)
    assert as_dict(out, "2")["cpu_cores_avg"] == (None, "no data")
    assert as_dict(out, "3")["cpu_efficiency"] == (None, "job too short")
    assert as_dict(out, "4")["mem_hwm_bytes"] == (None, "not started")
    five = as_dict(out, "5")
    assert five["hosts_with_data"] == (0.5, None)
    assert five["cpu_cores_avg"] == (4.0, None)  # only the node with data
    assert five["cpu_efficiency"] == (pytest.approx(4.0 / 16), None)
    assert five["mem_hwm_bytes"] == (None, "no data")
    assert out.height == 4 * len(METRICS)


def test_rates_count_by_their_overlap_with_the_job():
    # the begin sample lands 1 s after Slurm's start: its interval (idle, 0 cores)
    # lies almost wholly before the job and must not pull the average down
    start = T0 + timedelta(minutes=10)
    pts = series([(5, "n1", "cpu_busy", 0.0), (10, "n1", "cpu_busy", 0.0)])
    pts = pl.concat([pts, pl.DataFrame(
        [(start + timedelta(seconds=1 + 300 * k), "n1", "cpu_busy", v, "cores")
         for k, v in [(0, 0.0), (1, 8.0), (2, 8.0), (3, 8.0)]],
        schema=pts.schema, orient="row")])
    job = jobs({"jobid": "6", "start_time": start, "end_time": start + timedelta(minutes=15),
                "hosts": ["n1"], "ncpus": 16, "nnodes": 1})
    m = as_dict(compute_job_metrics(job, pts), "6")
    # weights: 1 s of the begin interval at 0 cores, then 299 + 300 + 300 s at 8
    assert m["cpu_cores_avg"][0] == pytest.approx(8.0 * 899 / 900)
