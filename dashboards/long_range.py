"""Cluster-wide series over long ranges, read from ``cluster_agg`` (not ``host_data``).

A year of the overview at 200 points reads 8,760 hourly rows per event
instead of every host's every sample. Staff only, like every cluster-wide
series (the overview decides, through ``Viewer.staff``). A bucket is built
from the widest aggregate (5 min or 1 h) that divides it: the time mean of
the cluster total, and the most hosts that reported in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl
import psycopg

from dashboards.timeseries import (
    _RAW_SCHEMA,
    EXTRA_SCHEMA,
    ORIGIN,
    _fetch,
    bucket_seconds,
    top_events,
)
from hpcperfstats.config import cluster_name
from hpcperfstats.hostdata.aggregates import WIDTHS
from hpcperfstats.hostdata.series import CGROUP_TYPES, SERIES, derive_series

#: Ranges at least this long read aggregates on the overview
LONG_RANGE = timedelta(days=3)
#: The host column of cluster-wide rows
CLUSTER = "*"


def use_aggregates(start: datetime, end: datetime) -> bool:
    """Whether a range is long enough to read the aggregates (migration 4 made them)."""
    return end - start >= LONG_RANGE


def aggregates_serve(conn: psycopg.Connection, start: datetime, end: datetime,
                     max_points: int, newest: datetime | None, cluster: str | None = None
                     ) -> bool:
    """Whether the cluster-wide series of [start, end] are read from ``cluster_agg``:
    a long range always; a shorter one when its plot buckets are at least the
    finest aggregate (5 minutes: 48 hours at 200 points) and ``cluster_agg``
    already holds the bucket of ``newest``, the range's newest sample
    (``host_aggregates`` runs after ``host_data``: until it has, the raw rows
    are read, so the newest samples are never missing from the plots)."""
    if use_aggregates(start, end):
        return True
    if newest is None or bucket_seconds(start, end, max_points) < WIDTHS[0]:
        return False
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM cluster_agg WHERE cluster = %s AND width_s = %s"
        " AND bucket = date_bin(%s, %s::timestamptz, %s))",
        (cluster_name(cluster), WIDTHS[0], timedelta(seconds=WIDTHS[0]), min(newest, end),
         ORIGIN)).fetchone()[0]


def bucket_and_width(start: datetime, end: datetime, max_points: int) -> tuple[int, int]:
    """Plot bucket (seconds): the nearest multiple of the aggregate it reads (at
    least one), so a plot keeps about ``max_points`` points (48 hours at 200:
    900 s buckets, 192 points; 24 hours: 300 s, 288 points)."""
    raw = bucket_seconds(start, end, max_points)
    width = max(w for w in WIDTHS if w <= max(raw, WIDTHS[0]))
    return max(1, round(raw / width)) * width, width


def _source(host: str | None) -> tuple[str, str, str]:
    """(table and filter, mean of a bucket, host column) of cluster or one host's rows."""
    if host is None:
        return "cluster_agg WHERE cluster = %(cl)s AND", "avg(value)", "%(c)s"
    return ("host_agg WHERE cluster = %(cl)s AND host = %(h)s AND",
            "sum(value * n) / nullif(sum(n) FILTER (WHERE value IS NOT NULL), 0)", "host")


def cluster_series(conn: psycopg.Connection, start: datetime, end: datetime,
                   names: Sequence[str], max_points: int, host: str | None = None,
                   cluster: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Named series of the whole cluster (host ``*``), or of ``host``, and the
    hosts reporting per bucket (cluster only; empty for a host)."""
    bucket, width = bucket_and_width(start, end, max_points)
    specs = [SERIES[n] for n in names]
    table, mean, who = _source(host)
    args = {"b": timedelta(seconds=bucket), "o": ORIGIN, "w": width, "s": start, "e": end,
            "c": CLUSTER, "h": host, "cl": cluster_name(cluster)}
    frame = _fetch(
        conn,
        f"SELECT extract(epoch FROM date_bin(%(b)s, bucket, %(o)s)), {who}, type, event,"
        f" {mean} FROM {table} width_s = %(w)s AND bucket >= %(s)s"
        " AND bucket <= %(e)s AND device = '' AND type = ANY(%(types)s)"
        " AND event = ANY(%(events)s) GROUP BY 1, 2, 3, 4",
        args | {"types": sorted({t for s in specs for t in s.types}),
                "events": sorted({e for s in specs for e in s.events})},
        _RAW_SCHEMA,
    )
    hosts_schema = {"time": pl.Datetime("us", "UTC"), "hosts": pl.Int64}
    hosts = pl.DataFrame(schema=hosts_schema) if host else _fetch(
        conn,
        "SELECT extract(epoch FROM date_bin(%(b)s, bucket, %(o)s)), max(hosts) FROM cluster_agg"
        " WHERE cluster = %(cl)s AND width_s = %(w)s AND bucket >= %(s)s AND bucket <= %(e)s"
        " GROUP BY 1",
        args, hosts_schema,
    )
    return derive_series(frame, names), hosts


def cluster_extra(conn: psycopg.Connection, start: datetime, end: datetime,
                  max_points: int, host: str | None = None, cluster: str | None = None
                  ) -> pl.DataFrame:
    """Types no named series covers, cluster-wide (host ``*``) or of ``host`` (EXTRA_SCHEMA)."""
    bucket, width = bucket_and_width(start, end, max_points)
    known = sorted({t for s in SERIES.values() for t in s.types} | set(CGROUP_TYPES))
    table, mean, who = _source(host)
    frame = _fetch(
        conn,
        # host-wide ('') and named-device ('*') rows: summed for rates, like extra_types
        f"SELECT extract(epoch FROM t), {who}, type, event, unit,"
        " CASE WHEN unit LIKE '%%/s' THEN sum(v) ELSE avg(v) END FROM ("
        f"  SELECT date_bin(%(b)s, bucket, %(o)s) AS t, {who} AS {'host' if host else 'c'},"
        f"   type, event, device, max(unit) AS unit, {mean} AS v FROM {table}"
        "   width_s = %(w)s AND bucket >= %(s)s AND bucket <= %(e)s"
        "   AND NOT (type = ANY(%(known)s)) GROUP BY 1, 2, 3, 4, 5) d"
        " GROUP BY 1, 2, 3, 4, 5",
        {"b": timedelta(seconds=bucket), "o": ORIGIN, "w": width, "s": start, "e": end,
         "c": CLUSTER, "h": host, "known": known, "cl": cluster_name(cluster)},
        EXTRA_SCHEMA,
    )
    return top_events(frame)
