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

from hpcperfstats.archive import read_range
from hpcperfstats.db.load import replace_host_data
from hpcperfstats.frames import long_frame
from hpcperfstats.host_types import RULES
from hpcperfstats.metrics import END_GRACE_S
from hpcperfstats.rates import host_rows

_SKIP = frozenset(t for t, r in RULES.items() if r.skip)


@dataclass
class HostLoadResult:
    rows: int
    samples: int
    hosts: int
    issues: int
    seconds: float


def compute_window(archive_dir: Path, start: datetime, end: datetime,
                   lookback_s: float) -> tuple[pl.DataFrame, int, int]:
    """host_data rows for start <= time < end; also samples and issues read."""
    t0, t1 = start.timestamp(), end.timestamp()
    samples = []
    issues = 0
    for raw in read_range(archive_dir, t0, t1, lookback_s):
        samples.extend(raw.samples)
        issues += len(raw.issues)
    rows = host_rows(long_frame(samples, skip_types=_SKIP), t0, t1)
    in_window = sum(1 for s in samples if t0 <= s.time < t1)
    return rows, in_window, issues


def build_host_data(conn: psycopg.Connection, archive_dir: Path, start: datetime,
                    end: datetime, lookback_s: float) -> HostLoadResult:
    started = time.monotonic()
    rows, samples, issues = compute_window(archive_dir, start, end, lookback_s)
    loaded = replace_host_data(conn, rows, start, end)
    return HostLoadResult(
        rows=loaded,
        samples=samples,
        hosts=rows["host"].n_unique() if rows.height else 0,
        issues=issues,
        seconds=time.monotonic() - started,
    )


def job_days_touched(conn: psycopg.Connection, start: datetime, end: datetime) -> set[str]:
    """Days (by job end, UTC) of the jobs whose run overlaps the window."""
    cur = conn.execute(
        "SELECT DISTINCT to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM job_data "
        "WHERE start_time < %s AND end_time + make_interval(secs => %s) >= %s",
        (end, END_GRACE_S, start),
    )
    return {row[0] for row in cur.fetchall()}
