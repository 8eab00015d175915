"""Aggregates of ``host_data`` per 5 minutes, 20 minutes and hour, per host and cluster-wide.

What the overview and host pages read across long ranges, and a job page
whose series are not stored yet (a running job) for its hours already
aggregated: a year of a 1,000-node cluster is over a billion ``host_data``
rows but 8,760 hourly ``cluster_agg`` rows per event; a 128-node, 48-hour
job's plot at 144 points is one 20-minute row per host and event, a quarter
of its 5-minute samples. Portable SQL (``date_bin``), so plain
PostgreSQL and TimescaleDB run the same refresh; the Dagster asset
``host_aggregates`` rebuilds the buckets of each hour after ``host_data``
(continuous aggregates would be a second implementation per path).

``host_agg.device`` is ``''`` for the average of host-wide rows (what the
named series read) and ``'*'`` for a host's named devices combined: per
device averaged over the bucket, then summed for rates (unit ``*/s``) and
averaged for gauges (the "every type" plots read both kinds). ``n`` is the
number of values averaged, so each coarser width is built from the next finer
one as its ``n``-weighted mean, equal to the mean of the raw
rows (for ``'*'`` rows, when a host's devices report equally often).
``cluster_agg`` sums ``host_agg`` over hosts and counts the hosts reporting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from hpcperfstats.config import cluster_name

#: Bucket widths kept, in seconds: 20 minutes is a wide job page's bucket over 48 hours
#: (144 points), so that page reads one row per bucket instead of four
WIDTHS = (300, 1200, 3600)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

DDL = """
CREATE TABLE IF NOT EXISTS host_agg (
    width_s integer NOT NULL,
    bucket  timestamptz NOT NULL,
    host    text NOT NULL,
    type    text NOT NULL,
    event   text NOT NULL,
    device  text NOT NULL,
    unit    text,
    value   double precision,
    n       integer NOT NULL,
    PRIMARY KEY (width_s, host, bucket, type, event, device)
);
CREATE INDEX IF NOT EXISTS host_agg_bucket ON host_agg (width_s, bucket);
CREATE TABLE IF NOT EXISTS cluster_agg (
    width_s integer NOT NULL,
    bucket  timestamptz NOT NULL,
    type    text NOT NULL,
    event   text NOT NULL,
    device  text NOT NULL,
    unit    text,
    value   double precision,
    hosts   integer NOT NULL,
    PRIMARY KEY (width_s, bucket, type, event, device)
);
"""

#: the finest width, from host_data
_HOST = """
INSERT INTO host_agg (cluster, width_s, bucket, host, type, event, device, unit, value, n)
SELECT %(c)s, %(w)s, date_bin(%(width)s, time, %(o)s), host, type, event, '', max(unit),
       avg(value), count(value)
FROM host_data WHERE cluster = %(c)s AND time >= %(s)s AND time < %(e)s AND device = ''
GROUP BY 3, 4, 5, 6
UNION ALL
SELECT %(c)s, %(w)s, b, host, type, event, '*', max(unit),
       CASE WHEN max(unit) LIKE '%%/s' THEN sum(v) ELSE avg(v) END, max(n)
FROM (SELECT date_bin(%(width)s, time, %(o)s) AS b, host, type, event, device,
             max(unit) AS unit, avg(value) AS v, count(value) AS n
      FROM host_data WHERE cluster = %(c)s AND time >= %(s)s AND time < %(e)s
        AND device <> ''
      GROUP BY 1, 2, 3, 4, 5) per_device
GROUP BY b, host, type, event
"""

#: coarser widths, from the next finer one: the n-weighted mean of its buckets
_COARSE = """
INSERT INTO host_agg (cluster, width_s, bucket, host, type, event, device, unit, value, n)
SELECT %(c)s, %(w)s, date_bin(%(width)s, bucket, %(o)s), host, type, event, device, max(unit),
       sum(value * n) / nullif(sum(n) FILTER (WHERE value IS NOT NULL), 0), sum(n)
FROM host_agg WHERE cluster = %(c)s AND width_s = %(fine)s AND bucket >= %(s)s
  AND bucket < %(e)s
GROUP BY 3, 4, 5, 6, 7
"""

_CLUSTER = """
INSERT INTO cluster_agg (cluster, width_s, bucket, type, event, device, unit, value, hosts)
SELECT cluster, width_s, bucket, type, event, device, max(unit), sum(value), count(DISTINCT host)
FROM host_agg WHERE cluster = %(c)s AND width_s = %(w)s AND bucket >= %(s)s AND bucket < %(e)s
GROUP BY cluster, width_s, bucket, type, event, device
"""


def _aligned(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole hours, so every bucket is rebuilt whole."""
    hour = 3600
    lo = int(start.timestamp()) // hour * hour
    hi = -(-int(end.timestamp()) // hour) * hour
    return datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)


def refresh(conn: psycopg.Connection, start: datetime, end: datetime,
            cluster: str | None = None) -> dict[str, int]:
    """Rebuild every bucket of [start, end) (widened to hours) of ``cluster`` (default:
    the configured one) in one transaction."""
    s, e = _aligned(start, end)
    c = cluster_name(cluster)
    rows = {"host_agg": 0, "cluster_agg": 0}
    with conn.transaction():
        for i, w in enumerate(WIDTHS):
            args = {"c": c, "w": w, "width": timedelta(seconds=w), "o": ORIGIN, "s": s, "e": e}
            args["fine"] = WIDTHS[i - 1]  # each from the next finer (n-weighted: exact)
            host = _HOST if i == 0 else _COARSE
            for table, insert in (("host_agg", host), ("cluster_agg", _CLUSTER)):
                conn.execute(f"DELETE FROM {table} WHERE cluster = %(c)s AND width_s = %(w)s"
                             " AND bucket >= %(s)s AND bucket < %(e)s", args)
                rows[table] += conn.execute(insert, args).rowcount
    return rows


def width_for(bucket_s: int) -> int | None:
    """The aggregate a plot bucket of ``bucket_s`` seconds is built from:
    the widest kept width that divides it, None when none does."""
    fits = [w for w in WIDTHS if bucket_s >= w and bucket_s % w == 0]
    return max(fits) if fits else None
