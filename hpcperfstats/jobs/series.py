"""``job_series``: the derived series of each job's hosts, tagged with the job id.

Stored as narrow rows (jobid, host, series, time, value) of *derived* series
(``hpcperfstats.hostdata.series``) rather than copies of ``host_data`` rows: a job page
plots "CPU cores busy", not thirty raw events, and the narrow form is about a
fifth of the size of the host_data rows behind it (no type/event/unit/delta
text per row). The raw rows stay in ``host_data`` for anyone who needs them.

A point is in a job's rows when ``metrics.inside_job`` says so, the rule
its metrics and coverage use: a gauge from the start instant on, a rate
only after it (a rate stamped at the start measured what ran before).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from hpcperfstats.db.tables import JOB_SERIES, JOB_SERIES_ROLLUP
from hpcperfstats.hostdata.aggregates import ORIGIN
from hpcperfstats.hostdata.series import RATE_SERIES
from hpcperfstats.jobs.metrics import inside_job, job_windows, own_cgroup

JOB_SERIES_COLUMNS = JOB_SERIES.schema


def job_series_rows(jobs: pl.DataFrame, series: pl.DataFrame,
                    cgroup: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows of ``job_series`` for ``jobs`` from host series and the jobs' own cgroups.

    ``series``: (time, host, series, value); ``cgroup``: the same plus jobid.
    A job spanning midnight gets every point of its run, whatever the day.
    """
    windows = job_windows(jobs)
    inside = inside_job(pl.col("series").is_in(RATE_SERIES))
    cols = list(JOB_SERIES_COLUMNS)
    parts = [windows.join(series, on="host", how="inner").filter(inside).select(cols)]
    if cgroup is not None and cgroup.height:
        parts.append(windows.join(own_cgroup(jobs, cgroup), on=["jobid", "host"], how="inner")
                     .filter(inside).select(cols))
    out = pl.concat(parts, how="vertical").cast(JOB_SERIES_COLUMNS)
    return out.sort(["jobid", "series", "host", "time"])


#: Widths (seconds) of ``job_series_rollup``: a long job's plot reads the widest that
#: fits its bucket instead of every stored point (a 128-node, 48-hour job holds
#: 368,640 ``job_series`` rows; at 30 minutes 49,152 rollup rows). Jobs short
#: enough for buckets under the narrowest width read ``job_series`` itself.
ROLLUP_WIDTHS = (600, 1800, 7200)
#: The plots' rate cut-off when the sampling interval is unknown (twice the smallest bucket)
DEFAULT_INTERVAL_S = 60.0


def first_rate(start: datetime, interval_s: float | None) -> datetime:
    """Rates stamped up to here are left off a job's plots: a rate stamped t covers the
    interval before t, so one stamped within half an interval of the start (the
    monitor's sample at the job's begin, a second late) measured mostly the time
    before the job: the node idle or another job, drawn as a ramp from 0 that the
    job never made. Its metrics weigh such a point by its overlap instead."""
    return start + timedelta(seconds=(interval_s or DEFAULT_INTERVAL_S) / 2)


def job_series_rollup(rows: pl.DataFrame, starts: pl.DataFrame) -> pl.DataFrame:
    """``job_series_rollup`` rows: ``job_series`` rows (``rows``) averaged per job, host,
    series and ``date_bin`` bucket of each :data:`ROLLUP_WIDTHS` width.

    ``starts``: jobid, start_time, interval_s (the job's sampling interval, min over
    its hosts; null if unknown). Rates up to :func:`first_rate` are left out, as the
    plots leave them out of the raw rows, so a plot bucket made of whole rollup
    buckets (``n``-weighted mean, last sample time) equals the one made of the rows.
    """
    if rows.is_empty():
        return pl.DataFrame(schema=JOB_SERIES_ROLLUP.schema)
    cut = starts.select(
        "jobid",
        (pl.col("start_time") + pl.duration(microseconds=(
            pl.col("interval_s").fill_null(DEFAULT_INTERVAL_S) * 500_000).cast(pl.Int64))
         ).alias("since"))
    kept = rows.join(cut, on="jobid", how="left").filter(
        ~pl.col("series").is_in(RATE_SERIES) | (pl.col("time") > pl.col("since")))
    offset = (pl.col("time") - pl.lit(ORIGIN)).dt.total_microseconds()
    parts = []
    for width in ROLLUP_WIDTHS:
        step = width * 1_000_000
        bucket = pl.lit(ORIGIN) + pl.duration(microseconds=offset // step * step)
        parts.append(
            kept.group_by("jobid", "host", "series", bucket.alias("bucket"))
            .agg(pl.col("time").max().alias("last_time"),
                 pl.col("value").mean().alias("value"),
                 pl.col("value").count().alias("n"))
            .with_columns(pl.lit(width).alias("width_s")))
    cols = [c for c in JOB_SERIES_ROLLUP.schema if c in parts[0].columns]
    return pl.concat([p.select(cols) for p in parts]).cast(
        {c: JOB_SERIES_ROLLUP.schema[c] for c in cols}).sort(
        "jobid", "width_s", "series", "host", "bucket")
