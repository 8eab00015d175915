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

import polars as pl

from hpcperfstats.db.tables import JOB_SERIES
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
