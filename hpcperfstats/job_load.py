"""Compute and load ``job_metrics`` for the jobs that ended in a window."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
import psycopg

from hpcperfstats.accounting import COLUMNS as JOB_COLUMNS
from hpcperfstats.db.load import read_frame, replace_job_metrics
from hpcperfstats.metrics import END_GRACE_S, LOOKBACK_S, compute_job_metrics
from hpcperfstats.series import SERIES_SCHEMA, host_series

_JOB_FIELDS = ["jobid", "start_time", "end_time", "hosts", "ncpus", "nnodes"]

#: Tolerance on "CPU use <= allocated cores": jiffies are sampled, not exact.
EFFICIENCY_SLACK = 0.02


@dataclass
class JobMetricsResult:
    jobs: int
    jobs_with_data: int
    rows: int
    seconds: float


def jobs_ended(conn: psycopg.Connection, start: datetime, end: datetime) -> pl.DataFrame:
    return read_frame(
        conn,
        f"SELECT {', '.join(_JOB_FIELDS)} FROM job_data WHERE end_time >= %s AND end_time < %s",
        (start, end),
        {k: JOB_COLUMNS[k] for k in _JOB_FIELDS},
    )


def metrics_for_jobs(conn: psycopg.Connection, jobs: pl.DataFrame) -> pl.DataFrame:
    """Metrics of ``jobs`` from the database's host data."""
    hosts = sorted({h for hs in jobs["hosts"].to_list() for h in (hs or [])})
    started = jobs["start_time"].drop_nulls()
    if hosts and started.len():
        series = host_series(
            conn, hosts, started.min() - timedelta(seconds=LOOKBACK_S),
            jobs["end_time"].max() + timedelta(seconds=END_GRACE_S),
            ["cpu_busy", "mem_used", "net_bw"],
        )
    else:
        series = pl.DataFrame(schema=SERIES_SCHEMA)
    return compute_job_metrics(jobs, series)


def build_job_metrics(conn: psycopg.Connection, start: datetime, end: datetime
                      ) -> JobMetricsResult:
    """Recompute the metrics of every job that ended in [start, end), day by day."""
    t0 = time.monotonic()
    total_jobs = with_data = rows = 0
    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        jobs = jobs_ended(conn, day, nxt)
        metrics = metrics_for_jobs(conn, jobs)
        rows += replace_job_metrics(conn, metrics, day.date())
        total_jobs += jobs.height
        with_data += metrics.filter(pl.col("value").is_not_null())["jobid"].n_unique()
        day = nxt
    return JobMetricsResult(total_jobs, with_data, rows, time.monotonic() - t0)


def metric_bound_violations(conn: psycopg.Connection, start: datetime, end: datetime
                            ) -> list[tuple]:
    """Metrics outside physical bounds for jobs that ended in the window."""
    cur = conn.execute(
        "SELECT m.jobid, m.metric, m.value FROM job_metrics m JOIN job_data j USING (jobid) "
        "WHERE j.end_time >= %s AND j.end_time < %s AND m.value IS NOT NULL AND ("
        " (m.metric = 'cpu_efficiency' AND (m.value < 0 OR m.value > 1 + %s))"
        " OR (m.metric = 'hosts_with_data' AND (m.value < 0 OR m.value > 1))"
        " OR (m.metric <> 'cpu_efficiency' AND m.value < 0))",
        (start, end, EFFICIENCY_SLACK),
    )
    return cur.fetchall()
