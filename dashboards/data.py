"""Every database read the dashboards make, as plain functions.

Each function takes an open connection and returns polars frames or plain
values, so pages stay free of SQL and the queries can be tested on their
own. User input only ever travels as query parameters; the one piece of
SQL chosen at run time, the sort order, comes from the fixed ``SORT_KEYS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from hpcperfstats.db.connect import connect, database_url
from hpcperfstats.series import SERIES, SERIES_SCHEMA, SeriesSpec, host_series

# Job list columns: the page's column key -> the SQL that sorts by it.
SORT_KEYS: dict[str, str] = {
    "jobid": "length(j.jobid) {dir}, j.jobid {dir}",
    "user": "j.username {dir}",
    "account": "j.account {dir}",
    "partition": "j.partition {dir}",
    "name": "j.jobname {dir}",
    "state": "j.state {dir}",
    "start": "j.start_time {dir}",
    "end": "j.end_time {dir}",
    "nodes": "j.nnodes {dir}",
    "cpu_eff": "m.value {dir}",
}

JOB_LIST_SCHEMA = {
    "jobid": pl.Utf8,
    "user": pl.Utf8,
    "account": pl.Utf8,
    "partition": pl.Utf8,
    "name": pl.Utf8,
    "state": pl.Utf8,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "nodes": pl.Int64,
    "cpu_eff": pl.Float64,
}

# Series the job page plots, in this order (those without data are left out).
PLOTTED_SERIES = ["cpu_busy", "mem_used", "net_bw", "block_bw"]

_URL: str | None = None


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A short-lived connection; the URL is resolved once per process.

    Resolving may start the embedded server, which we do not want to repeat
    (or lock on) for every page view.
    """
    global _URL
    if _URL is None:
        _URL = database_url()
    with connect(_URL, options="-c TimeZone=UTC") as conn:
        yield conn


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` literally at the start of a value."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _job_filter(user: str | None, state: str | None) -> tuple[sql.Composable, dict[str, Any]]:
    clauses = [sql.SQL("TRUE")]
    params: dict[str, Any] = {}
    if user:
        clauses.append(sql.SQL("j.username LIKE %(user)s"))
        params["user"] = _like_prefix(user)
    if state:
        clauses.append(sql.SQL("j.state = %(state)s"))
        params["state"] = state
    return sql.SQL(" AND ").join(clauses), params


def list_jobs(
    conn: psycopg.Connection,
    *,
    user: str | None = None,
    state: str | None = None,
    sort: str = "end",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[pl.DataFrame, int]:
    """One page of jobs (newest end first by default) and the total match count.

    Paged in SQL: a server that holds every job in memory per session does
    not survive a centre with millions of jobs.
    """
    where, params = _job_filter(user, state)
    order = SORT_KEYS.get(sort, SORT_KEYS["end"]).format(dir="DESC" if descending else "ASC")
    query = sql.SQL(
        """
        SELECT j.jobid, j.username, j.account, j.partition, j.jobname, j.state,
               j.start_time, j.end_time, j.nnodes, m.value
        FROM job_data j
        LEFT JOIN job_metrics m ON m.jobid = j.jobid AND m.metric = 'cpu_efficiency'
        WHERE {where}
        ORDER BY {order} NULLS LAST, j.jobid DESC
        LIMIT %(limit)s OFFSET %(offset)s
        """
    ).format(where=where, order=sql.SQL(order))
    params |= {"limit": max(1, int(limit)), "offset": max(0, int(offset))}
    rows = conn.execute(query, params).fetchall()
    total_query = sql.SQL("SELECT count(*) FROM job_data j WHERE {where}").format(where=where)
    total = conn.execute(total_query, params).fetchone()[0]
    return pl.DataFrame(rows, schema=JOB_LIST_SCHEMA, orient="row"), int(total)


def job_states(conn: psycopg.Connection) -> list[str]:
    """The states present, for the state filter's choices."""
    rows = conn.execute(
        "SELECT DISTINCT state FROM job_data WHERE state IS NOT NULL ORDER BY state"
    ).fetchall()
    return [row[0] for row in rows]


def job_record(conn: psycopg.Connection, jobid: str) -> dict[str, Any] | None:
    """The accounting row of one job, or None when there is no such job."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM job_data WHERE jobid = %s", (jobid,)).fetchone()


def job_metrics(conn: psycopg.Connection, jobid: str) -> pl.DataFrame:
    """Every metric computed for a job: metric, value (None = not computable), unit, reason."""
    rows = conn.execute(
        "SELECT metric, value, unit, reason FROM job_metrics WHERE jobid = %s ORDER BY metric",
        (jobid,),
    ).fetchall()
    schema = {"metric": pl.Utf8, "value": pl.Float64, "unit": pl.Utf8, "reason": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row")


def series_specs() -> dict[str, SeriesSpec]:
    """Series name -> spec with ``.label`` and ``.unit``."""
    return dict(SERIES)


def job_series(
    conn: psycopg.Connection, job: dict[str, Any], names: list[str] | None = None
) -> pl.DataFrame:
    """Per-host series over a job's run time (up to now for a running job)."""
    start = job.get("start_time")
    hosts = list(job.get("hosts") or [])
    if start is None or not hosts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    end = job.get("end_time") or datetime.now(UTC)
    return host_series(conn, hosts, start, end, names or PLOTTED_SERIES)
