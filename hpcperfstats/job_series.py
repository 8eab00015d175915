"""``job_series``: the derived series of each job's hosts, tagged with the job id.

Stored as narrow rows (jobid, host, series, time, value) of *derived* series
(``hpcperfstats.series``) rather than copies of ``host_data`` rows: a job page
plots "CPU cores busy", not thirty raw events, and the narrow form is about a
fifth of the size of the host_data rows behind it (no type/event/unit/delta
text per row). The raw rows stay in ``host_data`` for anyone who needs them.

A job's window is (start, end + grace]: a rate stamped at t covers the
interval before t, so the begin sample measures what ran before the job,
and the epilog's end sample lands seconds after Slurm's end time.
"""

from __future__ import annotations

import polars as pl

from hpcperfstats.db.tables import JOB_SERIES
from hpcperfstats.metrics import END_GRACE_S, job_windows, own_cgroup

JOB_SERIES_COLUMNS = JOB_SERIES.schema


def job_series_rows(jobs: pl.DataFrame, series: pl.DataFrame,
                    cgroup: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows of ``job_series`` for ``jobs`` from host series and the jobs' own cgroups.

    ``series``: (time, host, series, value); ``cgroup``: the same plus jobid.
    A job spanning midnight gets every point of its run, whatever the day.
    """
    windows = job_windows(jobs)
    inside = (pl.col("time") > pl.col("start_time")) & (
        pl.col("time") <= pl.col("end_time") + pl.duration(seconds=END_GRACE_S)
    )
    cols = list(JOB_SERIES_COLUMNS)
    parts = [windows.join(series, on="host", how="inner").filter(inside).select(cols)]
    if cgroup is not None and cgroup.height:
        parts.append(windows.join(own_cgroup(jobs, cgroup), on=["jobid", "host"], how="inner")
                     .filter(inside).select(cols))
    out = pl.concat(parts, how="vertical").cast(JOB_SERIES_COLUMNS)
    return out.sort(["jobid", "series", "host", "time"])
