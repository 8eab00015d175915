"""One definition of "inside the job", shared by job_series, the metrics and coverage.

A job ran 10:00-10:20 on c1, sampled every 5 minutes from 09:55, plus the
epilog's end sample at 10:20:30 (inside the 60 s grace) and a stray one at
10:21:30 (outside). Each sample gives a rate (cpu_busy) and a gauge (mem_used).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from hpcperfstats.jobs.coverage import job_coverage
from hpcperfstats.jobs.metrics import END_GRACE_S, job_points
from hpcperfstats.jobs.series import job_series_rows

START = datetime(2026, 3, 19, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=20)
TIMES = [START + timedelta(minutes=m) for m in (-5, 0, 5, 10, 15, 20)] + [
    END + timedelta(seconds=30), END + timedelta(seconds=90)]
JOBS = pl.DataFrame({"jobid": ["7"], "start_time": [START], "end_time": [END],
                     "hosts": [["c1"]]})
#: the memory reading at the start instant is the largest: it must count everywhere
MEM = {START: 99.0}


def _series() -> pl.DataFrame:
    rows = [(t, "c1", name, MEM.get(t, 10.0) if name == "mem_used" else 4.0)
            for t in TIMES for name in ("cpu_busy", "mem_used")]
    return pl.DataFrame(rows, schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8,
                                      "series": pl.Utf8, "value": pl.Float64}, orient="row")


def test_the_grace_is_the_one_the_fixture_assumes():
    assert END_GRACE_S == 60


def test_job_series_takes_the_start_reading_but_not_the_rate_stamped_at_start():
    rows = job_series_rows(JOBS, _series())
    times = {s: rows.filter(pl.col("series") == s)["time"].to_list()
             for s in ("cpu_busy", "mem_used")}
    # rates: 10:05 .. 10:20 and the end sample; the 10:00 rate covered 09:55-10:00
    assert times["cpu_busy"] == TIMES[2:7]
    # gauges: from the start instant on
    assert times["mem_used"] == TIMES[1:7]
    assert rows.filter(pl.col("series") == "mem_used")["value"].max() == 99.0


def test_metrics_weigh_the_same_points_as_the_series():
    points = job_points(JOBS, _series())
    mem = points.filter(pl.col("series") == "mem_used")
    assert mem["time"].to_list() == TIMES[1:7] and mem["value"].max() == 99.0
    cpu = points.filter(pl.col("series") == "cpu_busy").sort("time")
    # the end sample's rate overlaps the job by 0 s (10:20-10:20:30 is after the end)
    assert cpu["time"].to_list() == TIMES[2:6]
    assert cpu["weight"].to_list() == [300.0] * 4


def test_coverage_counts_the_start_sample():
    row = job_coverage(JOBS, _series()).row(0, named=True)
    # 5 expected instants (10:00, :05, :10, :15, :20), all present; the end sample is extra
    assert (row["expected"], row["present"], row["extra"]) == (5, 5, 1)
