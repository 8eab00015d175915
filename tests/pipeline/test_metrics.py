"""Job metrics over derived series, with hand-made numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from hpcperfstats.jobs.metrics import METRICS, compute_job_metrics

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


def seconds_series(points: list[tuple[float, str, str, float]]) -> pl.DataFrame:
    """(seconds after T0, host, series, value) -> a derived-series frame."""
    return pl.DataFrame(
        [(T0 + timedelta(seconds=t), h, s, v, "x") for t, h, s, v in points],
        schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "series": pl.Utf8,
                "value": pl.Float64, "unit": pl.Utf8},
        orient="row",
    )


def test_item5_every_interval_weighted_by_its_real_length():
    # cgroup CPU of a job T0+0.5 s .. T0+60 s: the begin sample at 0.5 s (the
    # node sampled at 0 s too), then 10 s samples. The first cgroup rate (stamped
    # 10 s) covers 0.5 .. 10 s = 9.5 s, not a "median gap" of 10 s.
    node = seconds_series([(t, "n1", "mem_used", 1e9) for t in (0, 0.5, 10, 20, 30, 40, 50, 60)])
    cg = seconds_series([(10, "n1", "cg_cpu", 1.0)] + [(t, "n1", "cg_cpu", 0.0)
                                                       for t in (20, 30, 40, 50, 60)])
    cg = cg.with_columns(pl.lit("7").alias("jobid"))
    job = jobs({"jobid": "7", "start_time": T0 + timedelta(seconds=0.5),
                "end_time": T0 + timedelta(seconds=60), "hosts": ["n1"], "ncpus": 1,
                "nnodes": 1})
    m = as_dict(compute_job_metrics(job, node, cg), "7")
    # 9.5 core-seconds over 59.5 s (a median-gap first interval: 10 / 60 = 0.1667)
    assert m["cpu_cores_avg"][0] == pytest.approx(9.5 / 59.5)


def test_item6_rates_over_very_short_intervals_are_merged_and_bounded():
    from hpcperfstats.hostdata.series import MIN_RATE_INTERVAL_S, derive_series

    # a 2-CPU node: jiffy counts (cs) turned into rates; a begin sample 30 ms after
    # the regular one at 10 s reads 2.9 cores over those 30 ms
    rows = []
    for t, busy, idle in ((10.0, 1.0, 1.0), (10.03, 2.9, 0.0), (20.0, 1.0, 1.0)):
        rows += [(T0 + timedelta(seconds=t), "n1", "cpu", ev, v)
                 for ev, v in (("user", busy), ("nice", 0.0), ("system", 0.0), ("irq", 0.0),
                               ("softirq", 0.0), ("idle", idle), ("iowait", 0.0))]
    frame = pl.DataFrame(rows, schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8,
                                       "type": pl.Utf8, "event": pl.Utf8,
                                       "value": pl.Float64}, orient="row")
    out = derive_series(frame, ["cpu_busy", "cpu_total"])
    busy = out.filter(pl.col("series") == "cpu_busy")
    assert MIN_RATE_INTERVAL_S == 2.0
    # the 30 ms point is folded into the next: (2.9 * 0.03 + 1.0 * 9.97) / 10
    assert busy["time"].to_list() == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]
    assert busy["value"].to_list() == [1.0, pytest.approx((2.9 * 0.03 + 1.0 * 9.97) / 10)]
    assert busy["value"].max() <= 2.0
    # clamp: busy never above the node's CPU count (cpu_total rounded)
    over = frame.with_columns(pl.when(pl.col("event") == "user").then(pl.col("value") + 1.2)
                              .otherwise(pl.col("value")).alias("value"))
    clamped = derive_series(over, ["cpu_busy", "cpu_total"])
    assert clamped.filter(pl.col("series") == "cpu_busy")["value"].max() <= 3.0


def test_item2_cgroup_joined_on_the_raw_job_id():
    # array task 1234_7 is Slurm's job 1240: its cgroup device is "1240"
    node = seconds_series([(t, "n1", "mem_used", 1e9) for t in (0, 10, 20, 30)])
    cg = seconds_series([(t, "n1", "cg_cpu", 2.0) for t in (10, 20, 30)]).with_columns(
        pl.lit("1240").alias("jobid"))
    job = jobs({"jobid": "1234_7", "start_time": T0, "end_time": T0 + timedelta(seconds=30),
                "hosts": ["n1"], "ncpus": 4, "nnodes": 1}).with_columns(
        pl.lit("1240").alias("jobid_raw"))
    m = as_dict(compute_job_metrics(job, node, cg), "1234_7")
    assert m["cpu_cores_avg"] == (2.0, None)
    out = compute_job_metrics(job, node, cg)
    assert out.filter(pl.col("metric") == "cpu_cores_avg")["source"].to_list() == ["cgroup"]


def test_item11_node_numbers_of_a_shared_node_are_marked_and_never_flagged():
    from hpcperfstats.flags.rules import evaluate_flags, load_rules

    busy = seconds_series([(t, "n1", s, v) for t in range(0, 601, 60)
                           for s, v in (("cpu_busy", 1.0), ("cpu_total", 2.0),
                                        ("mem_used", 1e9), ("mem_total", 8e9))])
    job = jobs({"jobid": "13", "start_time": T0, "end_time": T0 + timedelta(seconds=600),
                "hosts": ["n1"], "ncpus": 1, "nnodes": 1})
    alone = compute_job_metrics(job.with_columns(pl.lit(False).alias("shared")), busy)
    shared = compute_job_metrics(job.with_columns(pl.lit(True).alias("shared")), busy)
    src = dict(shared.select("metric", "source").iter_rows())
    assert src["cpu_efficiency"] == src["mem_hwm_bytes"] == "node (shared)"
    # 1 core of 2 on the node: partial, so node totals are not the job's either
    assert dict(alone.select("metric", "source").iter_rows())["cpu_efficiency"] == \
        "node (shared)"
    idle = busy.with_columns(pl.when(pl.col("series") == "cpu_busy").then(0.0)
                             .otherwise(pl.col("value")).alias("value"))
    two = compute_job_metrics(job.with_columns(pl.lit(2).cast(pl.Int32).alias("ncpus"),
                                               pl.lit(True).alias("shared")), idle)
    rules = load_rules()
    assert evaluate_flags(two, rules).filter(pl.col("flag") == "low_cpu_efficiency").height == 0
    whole = compute_job_metrics(job.with_columns(pl.lit(2).cast(pl.Int32).alias("ncpus"),
                                                 pl.lit(False).alias("shared")), idle)
    assert "low_cpu_efficiency" in evaluate_flags(whole, rules)["flag"].to_list()


def test_item7_reason_names_a_missing_source_not_a_short_job():
    node = seconds_series([(t, "n1", "cpu_busy", 1.0) for t in (0, 10, 20, 30)])
    job = jobs({"jobid": "1", "start_time": T0, "end_time": T0 + timedelta(seconds=30),
                "hosts": ["n1"], "ncpus": 1, "nnodes": 1})
    m = as_dict(compute_job_metrics(job, node), "1")
    assert m["flops_avg"] == (None, "not measured: the node has no hardware performance "
                                    "counters (PMU)")
    assert m["lustre_md_ops_avg"] == (None, "not measured: the node has no Lustre client")
    assert m["mem_hwm_bytes"] == (None, "job too short")  # mem is not optional: no claim
