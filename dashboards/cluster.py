"""Cluster-wide reads for the overview and host pages.

Hosts are found with a skip scan over the ``host_data`` primary key (one
index probe per host), never by scanning the table, so freshness stays
cheap on a table with billions of rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from dashboards.auth import Viewer
from dashboards.data import scope_clause
from hpcperfstats.clusters import DEFAULT_INTERVAL_S, cluster_config
from hpcperfstats.config import cluster_name

#: A host is silent when its last sample is older than this many intervals.
SILENT_INTERVALS = 2

FRESHNESS_SCHEMA = {
    "host": pl.Utf8, "last": pl.Datetime("us", "UTC"), "interval_s": pl.Float64,
    "age_s": pl.Float64, "silent": pl.Boolean,
}


def freshness(conn: psycopg.Connection, now: datetime | None = None,
              cluster: str | None = None) -> pl.DataFrame:
    """Last sample per host of ``cluster``, its sampling interval and whether it has
    gone silent (a host that sent one sample only: the cluster's declared interval)."""
    now = now or datetime.now(UTC)
    try:
        interval = cluster_config(cluster).sampling_interval_s
    except KeyError:  # a cluster nobody declared (a stale link): nothing to find anyway
        interval = DEFAULT_INTERVAL_S
    rows = conn.execute(
        """
        WITH RECURSIVE hosts(host) AS (
            (SELECT host FROM host_data WHERE cluster = %(c)s ORDER BY host LIMIT 1)
            UNION ALL
            SELECT (SELECT d.host FROM host_data d WHERE d.cluster = %(c)s AND d.host > h.host
                    ORDER BY d.host LIMIT 1)
            FROM hosts h WHERE h.host IS NOT NULL)
        SELECT host, last,
               extract(epoch FROM last - (SELECT max(d.time) FROM host_data d
                                          WHERE d.cluster = %(c)s AND d.host = l.host
                                          AND d.time < l.last))
        FROM (SELECT host, (SELECT max(time) FROM host_data d WHERE d.cluster = %(c)s
                            AND d.host = hosts.host) AS last
              FROM hosts WHERE host IS NOT NULL) l
        ORDER BY host
        """, {"c": cluster_name(cluster)}
    ).fetchall()
    frame = pl.DataFrame(
        rows, schema={"host": pl.Utf8, "last": pl.Datetime("us", "UTC"),
                      "interval_s": pl.Float64}, orient="row",
    )
    age = (pl.lit(now).cast(pl.Datetime("us", "UTC")) - pl.col("last")).dt.total_seconds()
    return frame.with_columns(age.cast(pl.Float64).alias("age_s")).with_columns(
        (pl.col("age_s") > SILENT_INTERVALS
         * pl.col("interval_s").fill_null(interval))
        .alias("silent")
    ).select(list(FRESHNESS_SCHEMA))


def latest_sample(fresh: pl.DataFrame) -> datetime | None:
    return None if fresh.is_empty() else fresh["last"].max()


def job_counts(
    conn: psycopg.Connection, viewer: Viewer, start: datetime, end: datetime
) -> dict[str, int]:
    """Jobs running at ``end`` and jobs that finished in [start, end] (the viewer's).

    Two counts, each of which an index serves (the end_time index for the
    finished ones, and for the running ones whichever of start_time and
    end_time is narrower at ``end``), not one pass over every job that ended
    after ``start`` (with a year of jobs and a range a month back, 0.4 s).
    """
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        """
        SELECT (SELECT count(*) FROM job_data j WHERE j.start_time <= %(e)s
                AND (j.end_time > %(e)s OR j.end_time IS NULL) AND {scope}),
               (SELECT count(*) FROM job_data j WHERE j.end_time >= %(s)s
                AND j.end_time <= %(e)s AND {scope})
        """
    ).format(scope=scope)
    running, finished = conn.execute(query, params | {"s": start, "e": end}).fetchone()
    return {"running": int(running or 0), "finished": int(finished or 0)}


def most_flagged(
    conn: psycopg.Connection, viewer: Viewer, start: datetime, end: datetime, limit: int = 10
) -> pl.DataFrame:
    """Jobs ending in the range with the most flags (empty before flags exist)."""
    schema = {"jobid": pl.Utf8, "user": pl.Utf8, "name": pl.Utf8, "flags": pl.Int64,
              "which": pl.Utf8}
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        """
        SELECT j.jobid, j.username, j.jobname, count(*), string_agg(DISTINCT f.flag, ', ')
        FROM job_flags f JOIN job_data j ON j.cluster = f.cluster AND j.jobid = f.jobid
        WHERE j.end_time >= %(s)s AND j.end_time <= %(e)s AND {scope}
        GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT %(n)s
        """
    ).format(scope=scope)
    rows = conn.execute(query, params | {"s": start, "e": end, "n": limit}).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


def host_jobs(
    conn: psycopg.Connection, viewer: Viewer, host: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Jobs that ran on ``host`` during [start, end] (the bands of the host page)."""
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        """
        SELECT j.jobid, j.username, j.jobname, j.start_time, j.end_time
        FROM job_data j
        WHERE j.hosts @> ARRAY[%(host)s]::text[] AND j.start_time <= %(e)s
          AND coalesce(j.end_time, 'infinity') >= %(s)s AND {scope}
        ORDER BY j.start_time LIMIT 500
        """
    ).format(scope=scope)
    cur = conn.execute(query, params | {"host": host, "s": start, "e": end})
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
