"""``job_coverage``: how much of each job's run its hosts actually reported.

For every (job, host): the host's sampling interval (the upper quartile of
the gaps between its timestamps: begin/end samples split intervals into
shorter gaps, outages make longer ones; a site running 60 s or 600 s needs no
setting), the samples expected over the run, those present, the extra ones,
and the gaps longer than 1.5 intervals as (from, to). Timestamps are what
host_data holds, so this works for monitors that send no ``%seq`` marks
(TACC's C monitor) too.

Coverage is at most 100 % by construction: the run has ``K + 1`` expected
instants (its start and every interval up to its end, ``K = round(run /
interval)``); a sample fills the instant nearest to it, each instant counts
once. Samples in the run plus the first one after its end (the epilog's,
within the grace) are matched; the ones left over (the prolog's begin and
the epilog's end sample next to a regular one) are ``extra``, shown as such
rather than as coverage above 100 %.
"""

from __future__ import annotations

import json

import polars as pl

from hpcperfstats.db.tables import JOB_COVERAGE
from hpcperfstats.jobs.metrics import inside_job, job_windows

#: A gap between two samples longer than this many intervals is a hole.
GAP_FACTOR = 1.5
#: Interval assumed for a host with a single sample in range.
DEFAULT_INTERVAL_S = 300.0

COVERAGE_COLUMNS = JOB_COVERAGE.schema


def sample_times(series: pl.DataFrame) -> pl.DataFrame:
    """Distinct (host, time) of every sample that produced a series point."""
    return series.select("host", "time").unique().sort(["host", "time"])


def host_intervals(times: pl.DataFrame) -> pl.DataFrame:
    """(host, interval_s): the upper quartile of the gaps between a host's samples."""
    return (
        times.with_columns(
            (pl.col("time").diff().over("host").dt.total_microseconds() / 1e6).alias("gap"))
        .group_by("host")
        .agg(pl.col("gap").quantile(0.75, "nearest").fill_null(DEFAULT_INTERVAL_S)
             .alias("interval_s"))
    )


def matched(times: list, start, end, interval: float) -> tuple[int, int, int]:
    """(expected, present, extra) of one job on one host; see the module doc."""
    run_s = (end - start).total_seconds()
    last = max(0, round(run_s / interval))
    after = [t for t in times if t > end][:1]  # the epilog's end sample, or the next one
    counted = [t for t in times if t <= end] + after
    slots = {min(last, max(0, round((t - start).total_seconds() / interval))) for t in counted}
    return last + 1, len(slots), len(counted) - len(slots)


def _gaps(times: list, start, end, interval: float) -> list[list[str]]:
    marks = [start, *times, end]
    out = []
    for a, b in zip(marks, marks[1:], strict=False):
        if (b - a).total_seconds() > GAP_FACTOR * interval:
            out.append([a.isoformat(), b.isoformat()])
    return out


def job_coverage(jobs: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """One row per (finished job, allocated host), hosts with no data included."""
    times = sample_times(series)
    windows = job_windows(jobs).join(host_intervals(times), on="host", how="left").with_columns(
        pl.col("interval_s").fill_null(DEFAULT_INTERVAL_S))
    seen = (
        windows.join(times, on="host", how="inner").filter(inside_job())
        .group_by(["jobid", "host"]).agg(pl.col("time").sort().alias("times"))
    )
    frame = windows.join(seen, on=["jobid", "host"], how="left")
    rows = []
    for r in frame.iter_rows(named=True):  # one per (job, host): small next to the points
        times_ = r["times"] or []
        expected, present, extra = matched(times_, r["start_time"], r["end_time"],
                                           r["interval_s"])
        in_run = [t for t in times_ if t <= r["end_time"]]
        rows.append({
            "jobid": r["jobid"], "host": r["host"], "interval_s": r["interval_s"],
            "expected": expected, "present": present, "fraction": present / expected,
            "gaps": json.dumps(_gaps(in_run, r["start_time"], r["end_time"], r["interval_s"])),
            "extra": extra,
        })
    if not rows:
        return pl.DataFrame(schema=COVERAGE_COLUMNS)
    return pl.DataFrame(rows, schema=COVERAGE_COLUMNS).sort(["jobid", "host"])
