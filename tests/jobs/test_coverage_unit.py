"""Coverage from timestamps alone: interval, expected, present, gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from hpcperfstats.jobs.coverage import job_coverage
from hpcperfstats.jobs.series import job_series_rows

T0 = datetime(2026, 11, 20, 23, tzinfo=UTC)


def test_gap_and_missing_host_at_a_60_s_interval():
    # host a: 60 s samples over a 30 min job, with 10:00-15:00 missing; host b: no data
    minutes = [m for m in range(-5, 31) if not 10 < m < 15]
    series = pl.DataFrame(
        [(T0 + timedelta(minutes=m), "a", "cpu_busy", 1.0, "cores") for m in minutes],
        schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "series": pl.Utf8,
                "value": pl.Float64, "unit": pl.Utf8}, orient="row")
    jobs = pl.DataFrame([{"jobid": "1", "start_time": T0, "end_time": T0 + timedelta(minutes=30),
                          "hosts": ["a", "b"]}])
    cov = {r["host"]: r for r in job_coverage(jobs, series).iter_rows(named=True)}
    a = cov["a"]
    assert (a["interval_s"], a["expected"], a["present"]) == (60.0, 31, 27)  # 0..30 less 11-14
    assert json.loads(a["gaps"]) == [["2026-11-20T23:10:00+00:00", "2026-11-20T23:15:00+00:00"]]
    b = cov["b"]
    assert (b["present"], b["fraction"]) == (0, 0.0)
    assert json.loads(b["gaps"]) == [["2026-11-20T23:00:00+00:00", "2026-11-20T23:30:00+00:00"]]
    # job_series keeps what lies in (start, end + 60 s]: minutes 1..30 less 11..14
    rows = job_series_rows(jobs, series.drop("unit"))
    assert rows.height == 30 - 4
    assert rows["time"].min() == T0 + timedelta(minutes=1)


def test_chunks_keep_a_hosts_jobs_together_and_bound_hosts():
    from hpcperfstats.jobs.load import chunks

    jobs = pl.DataFrame({"jobid": list("abcdef"),
                         "hosts": [["n1"], ["n1"], ["n2", "n3"], ["n3"], ["n4", "n5", "n6"],
                                   ["n7"]]})
    parts = [p["jobid"].to_list() for p in chunks(jobs, 3)]
    # a-d touch n1-n3; e's three more would make 6 hosts; f would make e's chunk 4
    assert parts == [["a", "b", "c", "d"], ["e"], ["f"]]


def test_item3_coverage_never_above_one_and_extra_samples_named():
    # a 60 s job at 10 s sampling: regular samples at 10..70 s, the prolog's
    # begin at 3 s, the epilog's end at 63.5 s, and two more jobs' begin/end
    # samples at 31 s and 31.02 s on the same node
    start = T0 + timedelta(seconds=3)
    seconds = [0, 3, 10, 20, 30, 31, 31.02, 40, 50, 60, 63.5, 70]
    series = pl.DataFrame(
        [(T0 + timedelta(seconds=s), "a", "cpu_busy", 1.0, "cores") for s in seconds],
        schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "series": pl.Utf8,
                "value": pl.Float64, "unit": pl.Utf8}, orient="row")
    jobs = pl.DataFrame([{"jobid": "1", "start_time": start,
                          "end_time": start + timedelta(seconds=60), "hosts": ["a"]}])
    row = job_coverage(jobs, series).row(0, named=True)
    # K = 6: instants 3, 13, ..., 63 s (interval 10 s: the upper quartile of the
    # gaps). 3, 10, 20, 30, 40, 50, 60 s fill instants 0..6 (each to its nearest);
    # 31 and 31.02 s share instant 3 and the end sample (63.5 s, the first after
    # the end) shares instant 6 with 60 s: 3 extra, coverage 7 of 7, not 10 of 7
    assert (row["interval_s"], row["expected"], row["present"], row["extra"]) == (10.0, 7, 7, 3)
    assert row["fraction"] == 1.0
