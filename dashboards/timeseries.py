"""Time series for plots, averaged into at most ``MAX_POINTS`` buckets in SQL.

A 128-node, 48-hour job holds about a million ``host_data`` rows; shipping
them to Python and then to the browser is what makes job pages slow. The
database averages each host's events into ``date_bin`` buckets first and
``hpcperfstats.hostdata.series.derive_series`` derives the named series from those
averages (every series is a signed sum of events, so the average of the sum
is the sum of the averages). Types no named series covers ("every type
collected": InfiniBand, Lustre, GPU, energy, ...) come back per event,
summed over devices for rates and averaged over devices for gauges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import psycopg

from hpcperfstats.config import cluster_name
from hpcperfstats.db.read import query_frame
from hpcperfstats.db.series_sql import series_query
from hpcperfstats.hostdata.aggregates import ORIGIN  # the rollups' bucket origin too
from hpcperfstats.hostdata.rates import epoch_utc
from hpcperfstats.hostdata.series import (
    ALL_SERIES,
    CGROUP_SCHEMA,
    CGROUP_SERIES,
    CGROUP_TYPES,
    RATE_SERIES,
    SERIES,
    SERIES_SCHEMA,
    derive_cgroup_series,
    derive_series,
)
from hpcperfstats.jobs.series import ROLLUP_WIDTHS, first_rate

#: Buckets per host and series on a plot: more than a screen shows.
MAX_POINTS = 240
#: The smallest bucket; samples are rarely closer than this.
MIN_BUCKET_S = 30
#: At most this many events of one extra type are plotted (largest first).
EXTRA_EVENTS_PER_TYPE = 3

# Series the job page plots first, in this order (those without data are left out).
PLOTTED_SERIES = ["cpu_busy", "mem_used", "net_bw", "block_bw"]

EXTRA_SCHEMA = {
    "time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "type": pl.Utf8, "event": pl.Utf8,
    "unit": pl.Utf8, "value": pl.Float64,
}



def _fetch(conn: psycopg.Connection, query: str, params: dict[str, Any],
           schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows of ``query`` (its first column an epoch in seconds) as a frame.

    A wide job's page reads a few hundred thousand bucket rows: they travel
    as one CSV text (``query_frame``), not as a Python tuple or a COPY
    message per row. psycopg binds ``params``, so values are never pasted
    into the SQL by us.
    """
    names = list(schema)
    frame = query_frame(conn, query, params, {names[0]: pl.Float64,
                                              **{n: schema[n] for n in names[1:]}})
    return frame.with_columns(epoch_utc(pl.col(names[0])).alias(names[0]))


_RAW_SCHEMA = {"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "type": pl.Utf8,
               "event": pl.Utf8, "value": pl.Float64}


def bucket_seconds(start: datetime, end: datetime, max_points: int = MAX_POINTS,
                   interval_s: float | None = None) -> int:
    """Seconds per plot bucket: the span over ``max_points``, but never below the
    data's own sampling interval (``interval_s``, from job_coverage) or, when
    that is unknown, :data:`MIN_BUCKET_S`. A 1-minute job sampled every 10 s
    gets 10 s buckets, not 30 s ones that halve its points."""
    span = max((end - start).total_seconds(), 1.0)
    floor = math.ceil(interval_s) if interval_s and interval_s > 0 else MIN_BUCKET_S
    return max(1, floor, math.ceil(span / max_points))


def data_interval(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                  ) -> float | None:
    """The job's sampling interval as job_coverage measured it (None if unknown)."""
    row = conn.execute("SELECT min(interval_s) FROM job_coverage WHERE cluster = %s"
                       " AND jobid = %s", (cluster_name(cluster), jobid)).fetchone()
    return row[0] if row else None


def named_types_events(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The types and events the named series ``names`` are made of."""
    specs = [SERIES[n] for n in names]
    return (sorted({t for s in specs for t in s.types}),
            sorted({e for s in specs for e in s.events}))


def named_rows(conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
               names: Sequence[str], bucket_s: int, cluster: str | None = None
               ) -> pl.DataFrame:
    """The raw events of named series ``names`` over [start, end], averaged per host and
    ``bucket_s`` bucket (the rows ``derive_series`` takes)."""
    types, events = named_types_events(names)
    return _fetch(
        conn,
        series_query(cgroup=False, bucketed=True),
        {"b": timedelta(seconds=bucket_s), "o": ORIGIN, "c": cluster_name(cluster),
         "h": list(hosts), "s": start, "e": end, "types": types, "events": events},
        _RAW_SCHEMA,
    )


def series(
    conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
    names: Sequence[str] | None = None, max_points: int = MAX_POINTS, cluster: str | None = None,
) -> pl.DataFrame:
    """Named series of ``hosts`` of ``cluster`` over [start, end], bucket-averaged
    (SERIES_SCHEMA), from ``host_data``. A job's hosts: ``long_range.hosts_series``
    (its hours already aggregated from ``host_agg``)."""
    names = list(names or PLOTTED_SERIES)
    if not hosts or not names:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    frame = named_rows(conn, hosts, start, end, names,
                       bucket_seconds(start, end, max_points), cluster)
    return derive_series(frame, names)


def types_present(
    conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
    sample: int = 2, cluster: str | None = None,
) -> set[str]:
    """The types the first ``sample`` hosts reported in the window.

    Every host of a job runs the same monitor, so a couple of hosts tell
    which types exist; the queries for optional types (cgroup, unnamed types)
    then run only when there is something to find, instead of scanning every
    row of a wide job to learn that there is not.
    """
    rows = conn.execute(
        "SELECT DISTINCT type FROM host_data WHERE cluster = %s AND host = ANY(%s)"
        " AND time >= %s AND time <= %s",
        (cluster_name(cluster), list(hosts)[:sample], start, end),
    ).fetchall()
    return {r[0] for r in rows}


def known_types() -> list[str]:
    """The types named series and the cgroup series read: every other type is "extra"
    (cgroup rows are per job, device = job id: shown only on that job's page)."""
    return sorted({t for s in SERIES.values() for t in s.types} | set(CGROUP_TYPES))


def extra_rows(conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
               wanted: Sequence[str], bucket_s: int, cluster: str | None = None
               ) -> pl.DataFrame:
    """Per host, event and ``bucket_s`` bucket, the ``wanted`` types' values (EXTRA_SCHEMA):
    each device averaged, then summed over devices for rates, averaged for gauges."""
    return _fetch(
        conn,
        """
        WITH d AS (
            SELECT date_bin(%(b)s, time, %(o)s) AS t, host, type, event, unit, device,
                   avg(value) AS v
            FROM host_data
            WHERE cluster = %(c)s AND host = ANY(%(h)s) AND time >= %(s)s
              AND time <= %(e)s AND type = ANY(%(wanted)s)
            GROUP BY 1, 2, 3, 4, 5, 6)
        SELECT extract(epoch FROM t), host, type, event, unit,
               CASE WHEN unit LIKE '%%/s' THEN sum(v) ELSE avg(v) END
        FROM d GROUP BY 1, 2, 3, 4, 5
        """,
        {"b": timedelta(seconds=bucket_s), "o": ORIGIN, "c": cluster_name(cluster),
         "h": list(hosts), "s": start, "e": end, "wanted": list(wanted)},
        EXTRA_SCHEMA,
    )


def extra_types(
    conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
    max_points: int = MAX_POINTS, cluster: str | None = None,
) -> pl.DataFrame:
    """Per host and event, the types no named series covers (EXTRA_SCHEMA), from
    ``host_data``. A job's hosts: ``long_range.hosts_extra``."""
    if not hosts:
        return pl.DataFrame(schema=EXTRA_SCHEMA)
    wanted = sorted(types_present(conn, hosts, start, end, cluster=cluster)
                    - set(known_types()))
    if not wanted:
        return pl.DataFrame(schema=EXTRA_SCHEMA)
    return top_events(extra_rows(conn, hosts, start, end, wanted,
                                 bucket_seconds(start, end, max_points), cluster))


#: The GPU events drawn per GPU on the job page's GPU tab (label, unit): the node's
#: sums (``gpu_util``, ``gpu_mem``, ``gpu_power``) hide an idle GPU among busy ones.
GPU_EVENTS: dict[str, tuple[str, str]] = {
    "utilization": ("GPU utilisation, each GPU", "%"),
    "mem_used": ("GPU memory used, each GPU", "B"),
    "energy": ("GPU power, each GPU", "W"),
}
GPU_SCHEMA = {"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "event": pl.Utf8,
              "value": pl.Float64}


def gpu_devices(
    conn: psycopg.Connection, hosts: Sequence[str], start: datetime, end: datetime,
    max_points: int = MAX_POINTS, cluster: str | None = None, since: datetime | None = None,
) -> pl.DataFrame:
    """Each GPU's :data:`GPU_EVENTS` over [start, end], bucket-averaged (GPU_SCHEMA):
    the per-GPU ``nvidia_gpu`` rows ``host_data`` keeps beside the node's sum (device
    ``''``), one line each, named ``<host> GPU <n>``. Power (a rate of the energy
    counter) only after ``since`` (``first_rate``: the rate sampled at the job's start
    is the interval before it). Empty without GPUs."""
    if not hosts or "nvidia_gpu" not in types_present(conn, hosts, start, end,
                                                      cluster=cluster):
        return pl.DataFrame(schema=GPU_SCHEMA)
    bucket = timedelta(seconds=bucket_seconds(start, end, max_points))
    frame = _fetch(
        conn,
        "SELECT extract(epoch FROM date_bin(%(b)s, time, %(o)s)), host || ' GPU ' || device,"
        " event, avg(value) FROM host_data"
        " WHERE cluster = %(c)s AND host = ANY(%(h)s) AND time >= %(s)s AND time <= %(e)s"
        " AND type = 'nvidia_gpu' AND device <> '' AND event = ANY(%(ev)s)"
        " AND (event <> 'energy' OR %(since)s::timestamptz IS NULL OR time > %(since)s)"
        " GROUP BY 1, 2, 3",
        {"b": bucket, "o": ORIGIN, "c": cluster_name(cluster), "h": list(hosts), "s": start,
         "e": end, "ev": list(GPU_EVENTS), "since": since},
        GPU_SCHEMA,
    )
    return frame.sort("event", "host", "time")


def top_events(frame: pl.DataFrame) -> pl.DataFrame:
    """The :data:`EXTRA_EVENTS_PER_TYPE` largest events of each type (EXTRA_SCHEMA rows)."""
    if frame.is_empty():
        return frame
    top = (
        frame.group_by("type", "event").agg(pl.col("value").abs().mean().alias("m"))
        .sort("m", descending=True).group_by("type", maintain_order=True)
        .head(EXTRA_EVENTS_PER_TYPE).select("type", "event")
    )
    return frame.join(top, on=["type", "event"]).sort("type", "event", "host", "time")


def cgroup(
    conn: psycopg.Connection, hosts: Sequence[str], jobid: str, start: datetime, end: datetime,
    max_points: int = MAX_POINTS, cluster: str | None = None,
) -> pl.DataFrame:
    """The job's own Slurm cgroup series (CGROUP_SCHEMA), where the monitor reported them."""
    if not hosts or not set(CGROUP_TYPES) & types_present(conn, hosts, start, end,
                                                          cluster=cluster):
        return pl.DataFrame(schema=CGROUP_SCHEMA)
    bucket = timedelta(seconds=bucket_seconds(start, end, max_points))
    frame = _fetch(
        conn,
        series_query(cgroup=True, bucketed=True),
        {"b": bucket, "o": ORIGIN, "c": cluster_name(cluster), "h": list(hosts), "s": start,
         "e": end,
         "devices": [jobid],
         "types": list(CGROUP_TYPES),
         "events": sorted({e for s in CGROUP_SERIES.values() for e in s.events})},
        {"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "type": pl.Utf8,
         "device": pl.Utf8, "event": pl.Utf8, "value": pl.Float64},
    )
    return derive_cgroup_series(frame)


def job_window(job: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """A job's run time (up to now while it runs), or None before it started."""
    start = job.get("start_time")
    if start is None:
        return None
    return start, job.get("end_time") or datetime.now(UTC)


def stored_job_series(
    conn: psycopg.Connection, jobid: str, start: datetime, end: datetime,
    names: Sequence[str], max_points: int = MAX_POINTS, hosts: Sequence[str] | None = None,
    cluster: str | None = None,
) -> pl.DataFrame:
    """A job's series from the pipeline's tables, bucket-averaged: the one read of a
    finished job's series (job page, compare page, data API).

    Already derived and keyed by job, so one index range per series instead
    of every raw event of every host. A bucket of at least the narrowest
    ``ROLLUP_WIDTHS`` width is rounded up to a multiple of the widest width
    that fits and made of whole ``job_series_rollup`` buckets (their
    ``n``-weighted mean: the mean of the rows; a 128-node, 48-hour job reads
    tens of thousands of rows instead of 368,640); finer buckets, and days
    built before the rollup, read ``job_series``. Empty when the job's rows
    are missing (a running job, or the daily asset has not run yet).
    """
    interval = data_interval(conn, jobid, cluster)
    seconds = bucket_seconds(start, end, max_points, interval)
    args = {"o": ORIGIN, "j": jobid, "c": cluster_name(cluster), "n": list(names),
            "rates": RATE_SERIES, "s": first_rate(start, interval),
            "h": None if hosts is None else list(hosts)}
    schema = {"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "series": pl.Utf8,
              "value": pl.Float64}
    frame = pl.DataFrame(schema=schema)
    if seconds >= ROLLUP_WIDTHS[0]:
        width = max(w for w in ROLLUP_WIDTHS if w <= seconds)
        seconds = math.ceil(seconds / width) * width  # the same buckets from job_series
        # rates before first_rate are not in the rollup (left out when it was built)
        frame = _fetch(
            conn,
            "SELECT extract(epoch FROM max(last_time)), host, series,"
            " sum(value * n) / nullif(sum(n) FILTER (WHERE value IS NOT NULL), 0)"
            " FROM job_series_rollup WHERE cluster = %(c)s AND jobid = %(j)s AND width_s = %(w)s"
            " AND series = ANY(%(n)s) AND (%(h)s::text[] IS NULL OR host = ANY(%(h)s))"
            " GROUP BY date_bin(%(b)s, bucket, %(o)s), host, series",
            args | {"b": timedelta(seconds=seconds), "w": width}, schema)
    if frame.is_empty():
        # each bucket is drawn at its last sample, so a line ends where the data ends
        frame = _fetch(
            conn,
            "SELECT extract(epoch FROM max(time)), host, series, avg(value) FROM job_series"
            " WHERE cluster = %(c)s AND jobid = %(j)s AND series = ANY(%(n)s)"
            " AND (%(h)s::text[] IS NULL OR host = ANY(%(h)s))"
            " AND (series <> ALL(%(rates)s) OR time > %(s)s)"
            " GROUP BY date_bin(%(b)s, time, %(o)s), host, series",
            args | {"b": timedelta(seconds=seconds)}, schema)
    units = {n: s.unit for n, s in ALL_SERIES.items()}
    return frame.with_columns(
        pl.col("series").replace_strict(units, default=None).alias("unit")
    ).select(list(SERIES_SCHEMA)).sort("series", "host", "time")


def job_series(
    conn: psycopg.Connection, job: dict[str, Any], names: Sequence[str] | None = None,
    max_points: int = MAX_POINTS, only_hosts: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Per-host series over a job's run time: from ``job_series`` where the
    pipeline stored them, else derived from ``host_data``. ``only_hosts``:
    some of the job's hosts (the data API's ``host=``), filtered in SQL. The job's
    own ``cluster`` (its ``job_data`` row) says whose hosts these are."""
    cluster = job.get("cluster")
    window = job_window(job)
    hosts = list(job.get("hosts") or [])
    if only_hosts is not None:
        hosts = [h for h in hosts if h in set(only_hosts)]
    if window is None or not hosts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    names = list(names or PLOTTED_SERIES)
    if job.get("end_time") is not None:
        stored = stored_job_series(conn, job["jobid"], *window, names, max_points,
                                   None if only_hosts is None else hosts, cluster)
        if not stored.is_empty():
            return stored
    from dashboards.long_range import hosts_series  # it reads through this module

    # the hours host_aggregates has built from host_agg, the newest raw: a running
    # 128-node job's 48 hours read a quarter of the rows
    named = hosts_series(conn, hosts, *window, [n for n in names if n in SERIES], max_points,
                         cluster)
    wanted = [n for n in names if n in CGROUP_SERIES]
    if wanted:
        own = cgroup(conn, hosts, job["jobid"], *window, max_points, cluster)
        own = own.filter(pl.col("series").is_in(wanted)).select(list(SERIES_SCHEMA))
        named = pl.concat([own, named]) if not own.is_empty() else named
    since = first_rate(window[0], data_interval(conn, job["jobid"], cluster))
    return named.filter(~pl.col("series").is_in(RATE_SERIES) | (pl.col("time") > since))


def with_mean(frame: pl.DataFrame, key: str = "series") -> pl.DataFrame:
    """Across hosts per time: mean, min and max (the job-wide line and its spread)."""
    return (
        frame.group_by(key, "time")
        .agg(pl.col("value").mean().alias("mean"), pl.col("value").min().alias("min"),
             pl.col("value").max().alias("max"))
        .sort(key, "time")
    )


def per_host_stats(frame: pl.DataFrame) -> pl.DataFrame:
    """Per host and series over the whole run: min, mean and max (the per-node table)."""
    return (
        frame.group_by("host", "series")
        .agg(pl.col("value").min().alias("min"), pl.col("value").mean().alias("mean"),
             pl.col("value").max().alias("max"))
        .sort("host", "series")
    )
