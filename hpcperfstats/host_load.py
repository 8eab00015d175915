"""Build one window of ``host_data`` from the archive and load it.

Glue between the archive reader, the frame/rate logic and the loader; the
Dagster asset and the archive import command both call it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import psycopg

from hpcperfstats.archive import read_chunks
from hpcperfstats.db.load import replace_host_data
from hpcperfstats.host_types import skipped_types
from hpcperfstats.metrics import END_GRACE_S
from hpcperfstats.rates import epoch_utc, host_rows_of_parts, same_boot
from hpcperfstats.textframe import long_frame_of_chunks


@dataclass
class HostLoadResult:
    rows: int
    samples: int
    hosts: int
    issues: int
    seconds: float
    samples_unloaded: int = 0


def compute_window(archive_dir: Path, start: datetime, end: datetime,
                   lookback_s: float) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """host_data rows for start <= time < end; the (host, time) samples read; issues."""
    t0, t1 = start.timestamp(), end.timestamp()
    skipped: list = []  # what the bounded reader left out (a sample over the chunk bound)
    parsed = long_frame_of_chunks(list(read_chunks(archive_dir, t0, t1, lookback_s, skipped)),
                                  skip_types=skipped_types())
    rows = host_rows_of_parts(parsed.parts, t0, t1, since=t0 - lookback_s)
    samples = parsed.samples_in.sort("host", "time").with_columns(
        series_start(parsed.samples_in.sort("host", "time")).alias("start"))
    in_window = samples.filter((pl.col("time") >= t0) & (pl.col("time") < t1))
    return rows, in_window, len(parsed.issues) + len(skipped)


def series_start(samples: pl.DataFrame) -> pl.Series:
    """Samples (sorted by host, time) that start their counters' series:
    a host's first sample read, or its first after a reboot."""
    prev_host = pl.col("host").shift(1)
    rebooted = ~same_boot(pl.col("boot"), pl.col("boot").shift(1))
    return samples.select(
        prev_host.is_null() | (prev_host != pl.col("host")) | rebooted
    ).to_series()


def build_host_data(conn: psycopg.Connection, archive_dir: Path, start: datetime,
                    end: datetime, lookback_s: float) -> HostLoadResult:
    started = time.monotonic()
    rows, samples, issues = compute_window(archive_dir, start, end, lookback_s)
    loaded = replace_host_data(conn, rows, start, end)
    return HostLoadResult(
        rows=loaded,
        samples=samples.height,
        hosts=rows["host"].n_unique() if rows.height else 0,
        issues=issues,
        seconds=time.monotonic() - started,
        samples_unloaded=unloaded_samples(samples.filter(~pl.col("start")), rows).height,
    )


def unloaded_samples(samples: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Archived (host, time) samples of the window with no host_data row.

    Every sample yields at least its gauge rows, and a counter-only sample
    its rates unless it starts a series (first sample of a node, after a
    reboot): those are allowed for by the caller's check.
    """
    times = samples.select("host", epoch_utc(pl.col("time")).alias("time"))
    loaded = rows.select("host", "time").unique()
    return times.join(loaded, on=["host", "time"], how="anti")


def window_checks(conn: psycopg.Connection, start: datetime, end: datetime) -> tuple[int, int]:
    """(negative rates, duplicate keys) among the window's host_data rows."""
    return conn.execute(
        "SELECT count(*) FILTER (WHERE delta < 0 OR (delta IS NOT NULL AND value < 0)), "
        "count(*) - count(DISTINCT (host, time, type, device, event)) "
        "FROM host_data WHERE time >= %s AND time < %s",
        (start, end),
    ).fetchone()


def job_days_touched(conn: psycopg.Connection, start: datetime, end: datetime) -> set[str]:
    """Days (by job end, UTC) of the jobs whose run overlaps the window."""
    cur = conn.execute(
        "SELECT DISTINCT to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM job_data "
        "WHERE start_time < %s AND end_time + make_interval(secs => %s) >= %s",
        (end, END_GRACE_S, start),
    )
    return {row[0] for row in cur.fetchall()}
