"""Build the job-indexed tables of the jobs that ended in a window, day by day.

For each day: the jobs that ended in it, in chunks of at most
``HPCPERF_JOB_CHUNK_HOSTS`` hosts (memory stays bounded on a 1,000-node day),
each chunk's derived series read once from host_data and turned into
job_series rows (and their rollup), job_metrics and job_coverage. The day's rows are replaced
in one transaction. Flags are separate (``flags_load``): they depend only on
the metrics and the rules, so a rule change recomputes them alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg

from hpcperfstats.config import cluster_name, env
from hpcperfstats.db.load import read_frame
from hpcperfstats.db.tables import JOB_METRICS
from hpcperfstats.hostdata.series import CGROUP_SCHEMA, SERIES_SCHEMA, cgroup_series, host_series
from hpcperfstats.jobs.accounting import COLUMNS as JOB_COLUMNS
from hpcperfstats.jobs.coverage import job_coverage
from hpcperfstats.jobs.metrics import END_GRACE_S, LOOKBACK_S, SHORT_JOB_S, compute_job_metrics
from hpcperfstats.jobs.series import job_series_rollup, job_series_rows
from hpcperfstats.jobs.store import clear_day, copy_day, day_windows

JOB_FIELDS = ["jobid", "jobid_raw", "start_time", "end_time", "hosts", "ncpus", "nnodes",
              "ngpus", "req_mem_bytes", "timelimit_s"]  # fmt: skip

#: Tolerance on "CPU use <= allocated cores": jiffies are sampled, not exact.
EFFICIENCY_SLACK = 0.02


def chunk_hosts() -> int:
    return int(env("JOB_CHUNK_HOSTS"))


@dataclass
class JobDayResult:
    jobs: int = 0
    jobs_with_data: int = 0
    metric_rows: int = 0
    series_rows: int = 0
    rollup_rows: int = 0
    coverage_rows: int = 0
    chunks: int = 0
    seconds: float = 0.0
    days: list[str] = field(default_factory=list)


def jobs_ended(conn: psycopg.Connection, start: datetime, end: datetime,
               cluster: str | None = None) -> pl.DataFrame:
    """Jobs that ended in [start, end), with ``shared``: another job ran on one of
    their nodes at the same time (whatever day it ended), so node totals are not
    theirs alone."""
    return read_frame(
        conn,
        f"{_SELECT_JOBS} WHERE j.cluster = %s AND j.end_time >= %s AND j.end_time < %s"
        " ORDER BY j.hosts[1] NULLS FIRST, j.start_time NULLS FIRST, j.jobid",
        (cluster_name(cluster), start, end), _JOBS_SCHEMA,
    )


#: Jobs as the metrics read them, with ``shared`` (a running job overlaps until now).
_SELECT_JOBS = (
    f"SELECT {', '.join(f'j.{c}' for c in JOB_FIELDS)}, EXISTS (SELECT 1 FROM job_data o"
    " WHERE o.cluster = j.cluster AND o.jobid <> j.jobid AND o.hosts && j.hosts"
    " AND o.start_time < coalesce(j.end_time, 'infinity')"
    " AND coalesce(o.end_time, 'infinity') > j.start_time) AS shared FROM job_data j"
)
_JOBS_SCHEMA = {**{k: JOB_COLUMNS[k] for k in JOB_FIELDS}, "shared": pl.Boolean}


def provisional_metrics(conn: psycopg.Connection, jobid: str, cluster: str | None = None,
                        now: datetime | None = None) -> pl.DataFrame:
    """Metrics so far of a job still running (JOB_METRICS rows), computed now by the
    same ``compute_job_metrics`` as ``job_metrics``, its end taken as ``now``.

    ``job_metrics`` is built once a job has ended; until then the job page
    shows these, marked provisional. Empty for a job that ended or never started.
    """
    jobs = read_frame(conn, f"{_SELECT_JOBS} WHERE j.cluster = %s AND j.jobid = %s"
                      " AND j.end_time IS NULL AND j.start_time IS NOT NULL",
                      (cluster_name(cluster), jobid), _JOBS_SCHEMA)
    if jobs.is_empty():
        return pl.DataFrame(schema=JOB_METRICS.schema)
    now = now or datetime.now(UTC)
    jobs = jobs.with_columns(pl.lit(now).cast(jobs.schema["end_time"]).alias("end_time"))
    series, cgroup = read_inputs(conn, jobs, cluster_name(cluster))
    return compute_job_metrics(jobs, series, cgroup)


def chunks(jobs: pl.DataFrame, max_hosts: int) -> Iterator[pl.DataFrame]:
    """Consecutive slices of ``jobs`` touching at most ``max_hosts`` distinct hosts
    (a single larger job is a chunk of its own).

    Jobs come ordered by their first host, so the jobs of a node run after
    one another fall into one chunk and each host's day is read about once.
    """
    hosts_of = [set(h or []) for h in jobs["hosts"].to_list()]
    first, seen = 0, set()
    for i, hosts in enumerate(hosts_of):
        if seen and len(seen | hosts) > max_hosts:
            yield jobs.slice(first, i - first)
            first, seen = i, set()
        seen |= hosts
    if first < len(hosts_of):
        yield jobs.slice(first, len(hosts_of) - first)


def read_inputs(conn: psycopg.Connection, jobs: pl.DataFrame, cluster: str | None = None
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Host series and the jobs' own cgroup series for a chunk of jobs."""
    hosts = sorted({h for hs in jobs["hosts"].to_list() for h in (hs or [])})
    started = jobs["start_time"].drop_nulls()
    if not hosts or not started.len():
        return pl.DataFrame(schema=SERIES_SCHEMA), pl.DataFrame(schema=CGROUP_SCHEMA)
    start = started.min() - timedelta(seconds=LOOKBACK_S)
    end = jobs["end_time"].max() + timedelta(seconds=END_GRACE_S)
    series = host_series(conn, hosts, start, end, cluster=cluster)
    # Slurm names a job's cgroup by its raw id (array task 1234_7 -> 1240)
    ids = sorted(set(jobs["jobid"].to_list()) | set(jobs["jobid_raw"].drop_nulls().to_list()))
    cgroup = cgroup_series(conn, hosts, ids, start, end, cluster=cluster)
    return series, cgroup


#: The tables one job day builds from one read of its jobs' host data.
JOB_DAY_TABLES = ("job_series", "job_series_rollup", "job_metrics", "job_coverage")


def build_job_day(conn: psycopg.Connection, start: datetime, end: datetime,
                  result: JobDayResult, tables: tuple[str, ...] = JOB_DAY_TABLES,
                  cluster: str | None = None) -> None:
    """Replace ``tables`` (of :data:`JOB_DAY_TABLES`) for jobs that ended in [start, end).

    A subset (``hpcperf backfill job_metrics``) replaces
    only those tables; the others keep their rows.
    """
    cluster = cluster_name(cluster)
    jobs = jobs_ended(conn, start, end, cluster)
    day = start.date()
    with conn.transaction(), conn.cursor() as cur:
        clear_day(cur, list(tables), day, jobs["jobid"].to_list(), cluster=cluster)
        for part in chunks(jobs, chunk_hosts()):
            series, cgroup = read_inputs(conn, part, cluster)
            rollup = "job_series_rollup" in tables
            if "job_series" in tables or rollup:
                rows = job_series_rows(part, series, cgroup)
            if "job_series" in tables:
                result.series_rows += copy_day(cur, "job_series", rows, day, cluster=cluster)
            if "job_metrics" in tables:
                metrics = compute_job_metrics(part, series, cgroup)
                result.metric_rows += copy_day(cur, "job_metrics", metrics, day, cluster=cluster)
                result.jobs_with_data += metrics.filter(pl.col("value").is_not_null()
                                                        & (pl.col("source") != "accounting")
                                                        )["jobid"].n_unique()
            if "job_coverage" in tables or rollup:
                coverage = job_coverage(part, series)
            if "job_coverage" in tables:
                result.coverage_rows += copy_day(cur, "job_coverage", coverage, day,
                                                 cluster=cluster)
            if rollup:  # the plots' rate cut-off needs each job's interval (coverage's)
                starts = part.select("jobid", "start_time").join(
                    coverage.group_by("jobid").agg(pl.col("interval_s").min()),
                    on="jobid", how="left")
                result.rollup_rows += copy_day(cur, "job_series_rollup",
                                               job_series_rollup(rows, starts), day,
                                               cluster=cluster)
            result.chunks += 1
    result.jobs += jobs.height
    result.days.append(day.isoformat())


def build_job_days(conn: psycopg.Connection, start: datetime, end: datetime,
                   tables: tuple[str, ...] = JOB_DAY_TABLES, cluster: str | None = None
                   ) -> JobDayResult:
    """Rebuild ``tables`` of every job day in [start, end) (a backfill range or one
    partition)."""
    t0 = time.monotonic()
    result = JobDayResult()
    for day, nxt in day_windows(start, end):
        build_job_day(conn, day, nxt, result, tables, cluster)
    result.seconds = time.monotonic() - t0
    return result


def metric_bound_violations(conn: psycopg.Connection, start: datetime, end: datetime,
                            cluster: str | None = None) -> list[tuple]:
    """Metrics outside physical bounds for jobs that ended in the window.

    Node totals of a shared node (source ``node (shared)``) are left out: they
    hold other work by definition, so above the job's cores is no error.
    """
    cur = conn.execute(
        "SELECT m.jobid, m.metric, m.value FROM job_metrics m JOIN job_data j"
        " USING (cluster, jobid) WHERE j.cluster = %(c)s"
        " AND j.end_time >= %(s)s AND j.end_time < %(e)s AND m.value IS NOT NULL"
        " AND coalesce(m.source, '') <> 'node (shared)' AND ("
        " m.value < 0"
        " OR (m.metric IN ('cpu_efficiency', 'gpu_util') AND m.value > 1 + %(slack)s)"
        " OR (m.metric = 'cpu_cores_avg'"
        "     AND m.value > j.ncpus::float8 / greatest(j.nnodes, 1) * (1 + %(slack)s))"
        " OR (m.metric IN ('hosts_with_data', 'mem_hwm_fraction', 'cpu_imbalance')"
        "     AND m.value > 1)"
        " OR (m.metric = 'idle_nodes' AND m.value > j.nnodes))",
        {"c": cluster_name(cluster), "s": start, "e": end, "slack": EFFICIENCY_SLACK},
    )
    return cur.fetchall()


def jobs_missing_metrics(conn: psycopg.Connection, start: datetime, end: datetime,
                         cluster: str | None = None) -> list[str]:
    """Finished jobs (long enough to measure) with CPU host data but no metric from it."""
    cur = conn.execute(
        "SELECT j.jobid FROM job_data j WHERE j.cluster = %(c)s"
        " AND j.end_time >= %(s)s AND j.end_time < %(e)s"
        " AND j.start_time IS NOT NULL AND j.end_time - j.start_time >= %(short)s"
        " AND EXISTS (SELECT 1 FROM host_data h WHERE h.cluster = j.cluster"
        "   AND h.host = ANY(j.hosts)"
        "   AND h.time > j.start_time AND h.time <= j.end_time AND h.device = ''"
        "   AND h.type = 'cpu')"
        " AND NOT EXISTS (SELECT 1 FROM job_metrics m WHERE m.cluster = j.cluster"
        "   AND m.jobid = j.jobid"
        "   AND m.metric = 'hosts_with_data' AND m.value IS NOT NULL)"
        " ORDER BY j.jobid",
        {"c": cluster_name(cluster), "s": start, "e": end,
         "short": timedelta(seconds=SHORT_JOB_S)},
    )
    return [r[0] for r in cur.fetchall()]
