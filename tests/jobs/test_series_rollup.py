"""``job_series_rollup`` rows worked out by hand (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from hpcperfstats.db.tables import JOB_SERIES_ROLLUP
from hpcperfstats.jobs.series import ROLLUP_WIDTHS, job_series_rollup

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # on every width's bucket edge (origin 2000-01-01)


def _t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


ROWS = pl.DataFrame(
    [("7", "h1", "cpu_busy", _t(0), 100.0),  # a rate stamped at the start: left out
     ("7", "h1", "cpu_busy", _t(5), 2.0), ("7", "h1", "cpu_busy", _t(10), 4.0),
     ("7", "h1", "cpu_busy", _t(15), 6.0),
     ("7", "h1", "mem_used", _t(0), 10.0),  # a gauge at the start is the job's
     ("7", "h1", "mem_used", _t(9), 20.0), ("7", "h1", "mem_used", _t(12), None)],
    schema={"jobid": pl.Utf8, "host": pl.Utf8, "series": pl.Utf8,
            "time": pl.Datetime("us", "UTC"), "value": pl.Float64}, orient="row")
STARTS = pl.DataFrame({"jobid": ["7"], "start_time": [T0], "interval_s": [60.0]},
                      schema={"jobid": pl.Utf8, "start_time": pl.Datetime("us", "UTC"),
                              "interval_s": pl.Float64})


def test_rows_per_width_by_hand():
    out = job_series_rollup(ROWS, STARTS)
    assert out.schema == pl.Schema(JOB_SERIES_ROLLUP.schema)
    got = {(r["width_s"], r["series"], r["bucket"]): (r["last_time"], r["value"], r["n"])
           for r in out.iter_rows(named=True)}
    expected = {
        # 10 minutes: [0, 10) and [10, 20)
        (600, "cpu_busy", _t(0)): (_t(5), 2.0, 1),
        (600, "cpu_busy", _t(10)): (_t(15), 5.0, 2),
        (600, "mem_used", _t(0)): (_t(9), 15.0, 2),
        (600, "mem_used", _t(10)): (_t(12), None, 0),  # only a missing value: none averaged
    }
    for width in ROLLUP_WIDTHS[1:]:  # 30 minutes and 2 hours: one bucket each
        expected[(width, "cpu_busy", _t(0))] = (_t(15), 4.0, 3)
        expected[(width, "mem_used", _t(0))] = (_t(12), 15.0, 2)
    assert got == expected
    assert set(out["jobid"]) == {"7"} and set(out["host"]) == {"h1"}


def test_the_rate_cut_is_half_the_interval_or_half_a_minute_when_unknown():
    rows = ROWS.with_columns(pl.col("time") + timedelta(seconds=20))  # the first rate at 0:20

    def first_bucket(interval_s: float | None) -> tuple:
        out = job_series_rollup(rows, STARTS.with_columns(
            pl.lit(interval_s, pl.Float64).alias("interval_s")))
        return out.filter((pl.col("width_s") == 1800) & (pl.col("series") == "cpu_busy")
                          ).select("value", "n").row(0)

    assert first_bucket(20.0) == ((100 + 2 + 4 + 6) / 4, 4)  # cut at 0:10: kept
    assert first_bucket(None) == (4.0, 3)  # cut at 0:30: left out


def test_no_rows_no_rollup():
    assert job_series_rollup(ROWS.clear(), STARTS).is_empty()
