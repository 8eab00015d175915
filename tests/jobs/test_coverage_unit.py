"""Coverage from timestamps alone: interval, expected, present, gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from hpcperfstats.coverage import job_coverage
from hpcperfstats.job_series import job_series_rows

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
    from hpcperfstats.job_load import chunks

    jobs = pl.DataFrame({"jobid": list("abcdef"),
                         "hosts": [["n1"], ["n1"], ["n2", "n3"], ["n3"], ["n4", "n5", "n6"],
                                   ["n7"]]})
    parts = [p["jobid"].to_list() for p in chunks(jobs, 3)]
    # a-d touch n1-n3; e's three more would make 6 hosts; f would make e's chunk 4
    assert parts == [["a", "b", "c", "d"], ["e"], ["f"]]
