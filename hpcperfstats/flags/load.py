"""Recompute ``job_flags`` of the jobs that ended in a window from stored metrics."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import psycopg

from hpcperfstats.config import cluster_name
from hpcperfstats.db.load import read_frame
from hpcperfstats.flags.rules import Rule, evaluate_flags
from hpcperfstats.jobs.store import clear_day, copy_day, day_windows


def build_job_flags(conn: psycopg.Connection, start: datetime, end: datetime,
                    rules: list[Rule], cluster: str | None = None) -> dict[str, int]:
    """Replace the flags of every job day in [start, end); counts per flag."""
    cluster = cluster_name(cluster)
    counts: dict[str, int] = {}
    for day, nxt in day_windows(start, end):
        metrics = read_frame(
            conn,
            "SELECT m.jobid, m.metric, m.value, m.source FROM job_metrics m"
            " JOIN job_data j USING (cluster, jobid)"
            " WHERE j.cluster = %s AND j.end_time >= %s AND j.end_time < %s",
            (cluster, day, nxt),
            {"jobid": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "source": pl.Utf8},
        )
        flags = evaluate_flags(metrics, rules)
        with conn.transaction(), conn.cursor() as cur:
            clear_day(cur, ["job_flags"], day.date(), metrics["jobid"].unique().to_list(),
                      cluster=cluster)
            copy_day(cur, "job_flags", flags, day.date(), cluster=cluster)
        for name in flags["flag"].to_list():
            counts[name] = counts.get(name, 0) + 1
    return counts
