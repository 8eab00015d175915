"""Series read from the aggregates ``host_aggregates`` builds (``cluster_agg``,
``host_agg``), not from every ``host_data`` row.

A year of the overview at 200 points reads 8,760 hourly rows per event
instead of every host's every sample (staff only, like every cluster-wide
series: the overview decides, through ``Viewer.staff``); a running 128-node
job's 48 hours read one 20-minute row per host and event instead of four
samples. A plot bucket is a whole multiple of the widest aggregate that
keeps it close to what the plot asks for (:func:`bucket_and_width`), so
each bucket is the ``n``-weighted mean of whole aggregate buckets: the mean
of the same raw rows.
"""

from __future__ import annotations

import math
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
    extra_rows,
    known_types,
    named_rows,
    named_types_events,
    top_events,
    types_present,
)
from hpcperfstats.config import cluster_name
from hpcperfstats.hostdata.aggregates import WIDTHS
from hpcperfstats.hostdata.series import derive_series

#: Ranges at least this long read aggregates on the overview
LONG_RANGE = timedelta(days=3)
#: The host column of cluster-wide rows
CLUSTER = "*"
#: How much coarser than asked a plot bucket may be made to read a wider aggregate
#: (1.25: 48 hours at 144 points, 1,198 s, reads 20-minute rows; at 200 points, 864 s,
#: 15 minutes of 5-minute rows rather than 20 minutes)
COARSER = 1.25
#: One microsecond: the last instant before a time (the raw reads' ranges are closed)
_TICK = timedelta(microseconds=1)


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
    """Plot bucket (seconds) and the aggregate width it is read from: the span over
    ``max_points`` rounded up to a whole multiple of the widest kept width that
    leaves it at most :data:`COARSER` times coarser (the finest width else), so a
    plot never gets more points than asked and reads as few rows as it can (48
    hours at 144 points: 1,200 s from the 20-minute rows; at 200 points: 900 s
    from 5-minute rows; 24 hours at 200: 600 s)."""
    raw = max(bucket_seconds(start, end, max_points), WIDTHS[0])
    for width in sorted(WIDTHS, reverse=True):
        bucket = math.ceil(raw / width) * width
        if bucket <= raw * COARSER or width == WIDTHS[0]:
            return bucket, width
    raise AssertionError("unreachable: the finest width always fits")


def _agg_named(conn: psycopg.Connection, start: datetime, end: datetime,
               names: Sequence[str], bucket: int, width: int, hosts: Sequence[str] | None,
               cluster: str | None) -> pl.DataFrame:
    """The events of named series over the aggregate buckets in [start, end], per plot
    bucket: cluster-wide (``hosts`` None: host ``*``, the time mean of the cluster
    total) or per host of ``hosts`` (the ``n``-weighted mean: the mean of the raw rows).
    A plot bucket of one aggregate bucket is read as it is, without grouping."""
    types, events = named_types_events(names)
    if hosts is None:
        table, mean, who = "cluster_agg WHERE cluster = %(cl)s AND", "avg(value)", "%(c)s"
    else:
        table, who = "host_agg WHERE cluster = %(cl)s AND host = ANY(%(h)s) AND", "host"
        mean = "sum(value * n) / nullif(sum(n) FILTER (WHERE value IS NOT NULL), 0)"
    whole = bucket == width
    time = "bucket" if whole else "date_bin(%(b)s, bucket, %(o)s)"
    return _fetch(
        conn,
        f"SELECT extract(epoch FROM {time}), {who}, type, event, {'value' if whole else mean}"
        f" FROM {table} width_s = %(w)s AND bucket >= %(s)s AND bucket <= %(e)s"
        " AND device = '' AND type = ANY(%(types)s) AND event = ANY(%(events)s)"
        + ("" if whole else " GROUP BY 1, 2, 3, 4"),
        {"b": timedelta(seconds=bucket), "o": ORIGIN, "w": width, "s": start, "e": end,
         "c": CLUSTER, "h": None if hosts is None else list(hosts),
         "cl": cluster_name(cluster), "types": types, "events": events},
        _RAW_SCHEMA,
    )


def _agg_extra(conn: psycopg.Connection, start: datetime, end: datetime, bucket: int,
               width: int, hosts: Sequence[str] | None, cluster: str | None,
               types: Sequence[str] | None = None) -> pl.DataFrame:
    """Types no named series covers, over the aggregate buckets in [start, end]
    (EXTRA_SCHEMA, before ``top_events``): host-wide (``''``) and named-device (``'*'``)
    rows, summed for rates, like ``timeseries.extra_types``. ``types``: only these."""
    if hosts is None:
        table, mean, who = "cluster_agg WHERE cluster = %(cl)s AND", "avg(value)", "%(c)s"
    else:
        table, who = "host_agg WHERE cluster = %(cl)s AND host = ANY(%(h)s) AND", "host"
        mean = "sum(value * n) / nullif(sum(n) FILTER (WHERE value IS NOT NULL), 0)"
    return _fetch(
        conn,
        f"SELECT extract(epoch FROM t), {who}, type, event, unit,"
        " CASE WHEN unit LIKE '%%/s' THEN sum(v) ELSE avg(v) END FROM ("
        f"  SELECT date_bin(%(b)s, bucket, %(o)s) AS t, {who} AS {'host' if hosts else 'c'},"
        f"   type, event, device, max(unit) AS unit, {mean} AS v FROM {table}"
        "   width_s = %(w)s AND bucket >= %(s)s AND bucket <= %(e)s"
        "   AND NOT (type = ANY(%(known)s))"
        "   AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s)) GROUP BY 1, 2, 3, 4, 5) d"
        " GROUP BY 1, 2, 3, 4, 5",
        {"b": timedelta(seconds=bucket), "o": ORIGIN, "w": width, "s": start, "e": end,
         "c": CLUSTER, "h": None if hosts is None else list(hosts), "known": known_types(),
         "cl": cluster_name(cluster), "types": None if types is None else list(types)},
        EXTRA_SCHEMA,
    )


def cluster_series(conn: psycopg.Connection, start: datetime, end: datetime,
                   names: Sequence[str], max_points: int, host: str | None = None,
                   cluster: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Named series of the whole cluster (host ``*``), or of ``host``, and the
    hosts reporting per bucket (cluster only; empty for a host)."""
    bucket, width = bucket_and_width(start, end, max_points)
    frame = _agg_named(conn, start, end, names, bucket, width,
                       None if host is None else [host], cluster)
    hosts_schema = {"time": pl.Datetime("us", "UTC"), "hosts": pl.Int64}
    hosts = pl.DataFrame(schema=hosts_schema) if host else _fetch(
        conn,
        "SELECT extract(epoch FROM date_bin(%(b)s, bucket, %(o)s)), max(hosts) FROM cluster_agg"
        " WHERE cluster = %(cl)s AND width_s = %(w)s AND bucket >= %(s)s AND bucket <= %(e)s"
        " GROUP BY 1",
        {"b": timedelta(seconds=bucket), "o": ORIGIN, "w": width, "s": start, "e": end,
         "cl": cluster_name(cluster)}, hosts_schema,
    )
    return derive_series(frame, names), hosts


def cluster_extra(conn: psycopg.Connection, start: datetime, end: datetime,
                  max_points: int, host: str | None = None, cluster: str | None = None
                  ) -> pl.DataFrame:
    """Types no named series covers, cluster-wide (host ``*``) or of ``host`` (EXTRA_SCHEMA)."""
    bucket, width = bucket_and_width(start, end, max_points)
    return top_events(_agg_extra(conn, start, end, bucket, width,
                                 None if host is None else [host], cluster))


# --- a job's hosts: the aggregated hours from the aggregates, the newest from host_data ---

def closed_part(conn: psycopg.Connection, start: datetime, end: datetime, max_points: int,
                cluster: str | None = None) -> tuple[int, int, datetime, datetime] | None:
    """(plot bucket, aggregate width, a, b): the whole plot buckets [a, b) of [start, end]
    that ``host_agg`` serves; None when none does (buckets under 5 minutes, or nothing
    aggregated yet).

    ``host_aggregates`` rebuilds whole hours after ``host_data``; the hour of the
    newest 5-minute bucket it has built may still be filling, so it and everything
    after are read raw, and so are the partial buckets at the range's two ends (their
    aggregates hold samples outside the range). The first bucket must be there at
    the width read (a deployment from before that width has none for old hours).
    """
    if bucket_seconds(start, end, max_points) < WIDTHS[0]:
        return None
    bucket, width = bucket_and_width(start, end, max_points)
    step = timedelta(seconds=bucket)
    first = ORIGIN + (start - ORIGIN) // step * step
    a = first if first == start else first + step
    c = cluster_name(cluster)
    newest = conn.execute("SELECT max(bucket) FROM cluster_agg WHERE cluster = %s"
                          " AND width_s = %s AND bucket <= %s", (c, WIDTHS[0], end)).fetchone()[0]
    if newest is None:
        return None
    hour = timedelta(hours=1)
    filling = ORIGIN + (newest - ORIGIN) // hour * hour
    last = min(filling, end)
    b = ORIGIN + (last - ORIGIN) // step * step
    if b <= a or not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM cluster_agg WHERE cluster = %s AND width_s = %s"
            " AND bucket = %s)", (c, width, a)).fetchone()[0]:
        return None
    return bucket, width, a, b


def _raw_parts(start: datetime, end: datetime, a: datetime, b: datetime
               ) -> list[tuple[datetime, datetime]]:
    """The closed ranges read raw around the aggregated [a, b) of [start, end]."""
    return [(s, e) for s, e in ((start, a - _TICK), (b, end)) if s <= e]


def hosts_series(conn: psycopg.Connection, hosts: Sequence[str], start: datetime,
                 end: datetime, names: Sequence[str], max_points: int,
                 cluster: str | None = None) -> pl.DataFrame:
    """Named series of ``hosts`` (a job's) over [start, end] (SERIES_SCHEMA): what
    ``timeseries.series`` reads from ``host_data``, the aggregated part
    (:func:`closed_part`) from ``host_agg`` and the rest raw, bucket by bucket the same
    numbers."""
    from dashboards.timeseries import series

    part = closed_part(conn, start, end, max_points, cluster) if hosts and names else None
    if part is None:
        return series(conn, hosts, start, end, names, max_points, cluster)
    bucket, width, a, b = part
    frames = [_agg_named(conn, a, b - _TICK, names, bucket, width, hosts, cluster)]
    frames += [named_rows(conn, hosts, s, e, names, bucket, cluster)
               for s, e in _raw_parts(start, end, a, b)]
    return derive_series(pl.concat(frames), list(names))


def hosts_extra(conn: psycopg.Connection, hosts: Sequence[str], start: datetime,
                end: datetime, max_points: int, cluster: str | None = None) -> pl.DataFrame:
    """Types no named series covers, per host of ``hosts`` (EXTRA_SCHEMA): what
    ``timeseries.extra_types`` reads, the aggregated part from ``host_agg``."""
    from dashboards.timeseries import extra_types

    part = closed_part(conn, start, end, max_points, cluster) if hosts else None
    if part is None:
        return extra_types(conn, hosts, start, end, max_points, cluster)
    wanted = sorted(types_present(conn, hosts, start, end, cluster=cluster)
                    - set(known_types()))
    if not wanted:
        return pl.DataFrame(schema=EXTRA_SCHEMA)
    bucket, width, a, b = part
    frames = [_agg_extra(conn, a, b - _TICK, bucket, width, hosts, cluster, wanted)]
    frames += [extra_rows(conn, hosts, s, e, wanted, bucket, cluster)
               for s, e in _raw_parts(start, end, a, b)]
    return top_events(pl.concat(frames))
