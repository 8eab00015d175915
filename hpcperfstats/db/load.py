"""Bulk writes: each replaces exactly its partition's rows (or appends new ones) in one transaction.

Rows travel as CSV written by polars (in Rust) into ``COPY ... FROM STDIN``,
so no per-row Python runs on the load path. Re-running a load for the same
window or day gives the same table: that is what makes every Dagster
partition safe to re-materialise.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime

import polars as pl
import psycopg

from hpcperfstats.db.tables import HOST_DATA, JOB_DATA

HOST_DATA_COLUMNS = HOST_DATA.copy_columns
JOB_DATA_COLUMNS = JOB_DATA.copy_columns
#: rows turned into CSV at once by :func:`copy_frame` (about 10 MB of text)
COPY_BATCH_ROWS = 100_000


def _pg_array(values: pl.Expr) -> pl.Expr:
    """A text[] literal for COPY CSV from a list column (quotes escaped)."""
    quoted = values.list.eval(
        pl.lit('"') + pl.element().str.replace_all(r"\\", r"\\\\").str.replace_all('"', r'\"')
        + pl.lit('"')
    )
    return pl.lit("{") + quoted.list.join(",") + pl.lit("}")


def with_cluster(frame: pl.DataFrame, cluster: str) -> pl.DataFrame:
    """``frame`` with the ``cluster`` column every table's key starts with."""
    return frame.with_columns(pl.lit(cluster, pl.Utf8).alias("cluster"))


def copy_frame(cur: psycopg.Cursor, table: str, frame: pl.DataFrame, columns: Sequence[str]) -> int:
    """COPY ``frame`` (already in ``columns`` order) into ``table``; returns rows."""
    if frame.height == 0:
        return 0
    prepared = frame.select(columns).with_columns(
        [_pg_array(pl.col(c)).alias(c) for c in columns if frame.schema[c] == pl.List(pl.Utf8)]
    )
    cols = ", ".join(columns)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
        # CSV made and sent a slice at a time: the text is never all in memory
        for part in prepared.iter_slices(COPY_BATCH_ROWS):
            buf = io.BytesIO()
            part.write_csv(buf, include_header=False, null_value="\\N", datetime_format=None)
            view = buf.getbuffer()
            for i in range(0, len(view), 1 << 20):
                copy.write(view[i : i + (1 << 20)])
    return frame.height


def replace_host_data(conn: psycopg.Connection, rows: pl.DataFrame, start: datetime,
                      end: datetime, *, cluster: str) -> int:
    """Replace every host_data row of ``cluster`` with start <= time < end by ``rows``."""
    with conn.transaction(), conn.cursor() as cur:
        delete_host_data(cur, start, end, cluster=cluster)
        return append_host_data(cur, rows, start, end, cluster=cluster)


def _no_decompression_cap(cur: psycopg.Cursor) -> None:
    """Lift TimescaleDB's cap on rows decompressed per transaction.

    An hour in a compressed chunk: a delete decompresses the batches of every
    host of the chunk (they span its whole time range), far over the default
    cap of 100,000 rows per transaction (docs/operations.md). A placeholder
    setting on plain PostgreSQL.
    """
    cur.execute("SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0")


def delete_host_data(cur: psycopg.Cursor, start: datetime, end: datetime,
                     hosts: Sequence[str] | None = None, *, cluster: str) -> int:
    """Delete ``cluster``'s rows with start <= time < end (of ``hosts`` only,
    when given; an empty list deletes nothing); returns how many."""
    if hosts is not None and not hosts:
        return 0
    _no_decompression_cap(cur)
    if hosts is None:
        cur.execute("DELETE FROM host_data WHERE cluster = %s AND time >= %s AND time < %s",
                    (cluster, start, end))
    else:
        cur.execute("DELETE FROM host_data WHERE cluster = %s AND time >= %s AND time < %s "
                    "AND host = ANY(%s)", (cluster, start, end, list(hosts)))
    return cur.rowcount


def delete_host_rows_from(cur: psycopg.Cursor, starts: Sequence[tuple[str, int]],
                          end: datetime, *, cluster: str) -> int:
    """Delete each (host, epoch microseconds) pair's rows of ``cluster`` from
    that time to ``end``."""
    if not starts:
        return 0
    _no_decompression_cap(cur)
    cur.execute(
        "DELETE FROM host_data h USING unnest(%s::text[], %s::bigint[]) AS d(host, us) "
        "WHERE h.cluster = %s AND h.host = d.host "
        "AND h.time >= to_timestamp(d.us / 1000000.0) AND h.time < %s",
        ([h for h, _ in starts], [us for _, us in starts], cluster, end))
    return cur.rowcount


def append_host_data(cur: psycopg.Cursor, rows: pl.DataFrame, start: datetime,
                     end: datetime, *, cluster: str) -> int:
    """COPY ``rows`` (all with start <= time < end) into host_data; returns how many.

    Rows already there (same key) make the COPY fail: a build never writes a
    row twice, it deletes what it replaces first.
    """
    outside = rows.filter((pl.col("time") < start) | (pl.col("time") >= end)).height
    if outside:
        raise ValueError(f"{outside} rows fall outside [{start}, {end})")
    return copy_frame(cur, "host_data", with_cluster(rows, cluster), HOST_DATA_COLUMNS)


def upsert_job_data(conn: psycopg.Connection, jobs: pl.DataFrame, day: date, *,
                    cluster: str) -> int:
    """Insert or update jobs of ``cluster`` from the accounting file of ``day``.

    A job seen in several dumps (running, then finished) keeps the record of
    the newest dump: an older day's file never overwrites a newer one.
    """
    frame = with_cluster(jobs.with_columns(pl.lit(day).alias("source_day")), cluster)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in JOB_DATA_COLUMNS
                        if c not in ("cluster", "jobid"))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE job_data_in (LIKE job_data INCLUDING DEFAULTS) "
                    "ON COMMIT DROP")
        copy_frame(cur, "job_data_in", frame, JOB_DATA_COLUMNS)
        cols = ", ".join(JOB_DATA_COLUMNS)
        cur.execute(
            f"INSERT INTO job_data ({cols}) SELECT {cols} FROM job_data_in "
            f"ON CONFLICT (jobid, cluster) DO UPDATE SET {updates}, loaded_at = now() "
            "WHERE job_data.source_day IS NULL OR job_data.source_day <= EXCLUDED.source_day"
        )
        return cur.rowcount


def read_frame(conn: psycopg.Connection, query: str, params: Sequence | dict | None,
               schema: dict) -> pl.DataFrame:
    """Run a parameterised query into a polars frame of the given schema."""
    cur = conn.execute(query, params)
    return pl.DataFrame(cur.fetchall(), schema=schema, orient="row")
