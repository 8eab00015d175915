"""Writes of the job-indexed tables: one job day replaced in one transaction.

A job day's rows (job_series, job_metrics, job_coverage; job_flags on its
own) are deleted and re-copied together, so a re-materialised or backfilled
day never shows half old, half new rows. Rows of the same jobs under another
day are removed too: a job whose end moved (requeued, or running at the
previous dump) must not keep stale rows under its old day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import polars as pl
import psycopg

from hpcperfstats.db.load import copy_frame, with_cluster
from hpcperfstats.db.tables import TABLES

JOB_TABLES: dict[str, list[str]] = {
    name: TABLES[name].copy_columns
    for name in ("job_series", "job_series_rollup", "job_metrics", "job_coverage", "job_flags")
}


def day_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[day, next day) windows covering [start, end): the loop of every job-day builder."""
    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        yield day, nxt
        day = nxt


def clear_day(cur: psycopg.Cursor, tables: list[str], day: date, jobids: list[str], *,
              cluster: str) -> None:
    """Delete ``cluster``'s rows of ``day`` and of ``jobids`` from ``tables`` (inside a
    transaction)."""
    for table in tables:
        if table not in JOB_TABLES:
            raise KeyError(table)
        cur.execute(f"DELETE FROM {table} WHERE cluster = %s AND (day = %s OR jobid = ANY(%s))",
                    (cluster, day, jobids))


def copy_day(cur: psycopg.Cursor, table: str, frame: pl.DataFrame, day: date, *,
             cluster: str) -> int:
    """COPY ``frame`` (the table's columns but ``day`` and ``cluster``) into ``table``."""
    return copy_frame(cur, table, with_cluster(frame.with_columns(pl.lit(day).alias("day")),
                                               cluster), JOB_TABLES[table])
