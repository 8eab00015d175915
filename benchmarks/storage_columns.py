"""Where the compressed bytes of ``host_data`` go, column by column.

``python -m benchmarks.storage_columns [--nodes 20] [--levers]``. Needs TimescaleDB in
the embedded PostgreSQL (``scripts/setup``).

Loads fixture-shaped nodes for one day (``benchmarks.storage.fixture_rows``:
the real Stampede3 file's rows tiled over the day), compresses every chunk,
and sums ``pg_column_size`` of each column of the compressed chunk tables,
per stored value. Then an estimate of the next lever: counters stored as
their integer raw delta (``bigint``: delta-of-delta and simple8b) with the
unit factor and the interval beside it, the float ``value`` kept for gauges
only (the raw delta is approximated from the SI one: ``s/s`` rows were
centiseconds, the rest whole units), every interval taken as 300 s. Last,
the same lever kept exact (``exact_variant``): each row's real interval
stored beside it and the float kept wherever ``raw * factor / dt`` does not
give the stored value back bit for bit. A schema change is judged by
measured bytes before it is made.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psycopg

from benchmarks.storage import DAY, FIXTURE, STEP_S, fixture_intervals, fixture_rows
from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema


def column_bytes(conn: psycopg.Connection) -> dict[str, int]:
    """Bytes of each column over every compressed chunk (TOAST included)."""
    tables = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = '_timescaledb_internal' AND c.relkind = 'r'"
        r" AND c.relname LIKE '%\_chunk\_compressed'")]
    cols = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped", (tables[0],))]
    out = dict.fromkeys(cols, 0)
    for table in tables:
        sums = ", ".join(f'coalesce(sum(pg_column_size("{c}")), 0)' for c in cols)
        for c, v in zip(cols, conn.execute(f"SELECT {sums} FROM {table}").fetchone(), strict=True):
            out[c] += int(v)
    return out


def variant(conn: psycopg.Connection, name: str, rows: int) -> None:
    conn.execute("SELECT compress_chunk(c, if_not_compressed => true)"
                 " FROM show_chunks('host_data') c")
    conn.execute("VACUUM host_data")  # what autovacuum does after the merge of chunks
    total = conn.execute("SELECT hypertable_size('host_data')").fetchone()[0]
    parts = column_bytes(conn)
    shown = ", ".join(f"{c} {b / rows:.2f}" for c, b in sorted(parts.items(), key=lambda x: -x[1])
                      if b / rows >= 0.01)
    print(f"{name}: {total / rows:.2f} bytes/value in all; by column: {shown}")
    conn.execute("SELECT decompress_chunk(c, if_compressed => true)"
                 " FROM show_chunks('host_data') c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--levers", action="store_true",
                        help="also measure the cheaper levers: orderby and segmentby "
                             "choices, the columns stored redundantly per row")
    args = parser.parse_args()
    if not embedded.timescale_installed():
        raise SystemExit("TimescaleDB is not built into the embedded server: run scripts/setup")
    with tempfile.TemporaryDirectory(prefix="hpcperf-columns-") as tmp:
        with embedded.running(Path(tmp) / "pg") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_schema(conn)
                rows = fixture_rows(conn, args.nodes)
                print(f"{args.nodes} fixture-shaped nodes x 1 day: {rows:,} values")
                variant(conn, "host_data (migration 5)", rows)
                if args.levers:
                    cheap_levers(conn, rows)
                conn.execute("ALTER TABLE host_data ADD COLUMN raw bigint,"
                             " ADD COLUMN factor float8, ADD COLUMN dt float8")
                scale = "CASE WHEN unit = 's/s' THEN 0.01 ELSE 1 END"
                conn.execute(f"UPDATE host_data SET raw = round(value * 300 / {scale}),"
                             f" factor = {scale}, dt = 300, value = NULL WHERE unit LIKE '%/s'")
                variant(conn, "estimate: counters as bigint raw deltas", rows)
                exact_variant(conn, rows)


def cheap_levers(conn: psycopg.Connection, rows: int) -> None:
    """Compression settings and per-row columns, each measured; the table is left
    as it was (the dropped columns are put back)."""
    def compress(segment: str, order: str) -> None:
        conn.execute(f"ALTER TABLE host_data SET (timescaledb.compress_segmentby = '{segment}',"
                     f" timescaledb.compress_orderby = '{order}')")

    compress("cluster, host", "type, event, device, time")
    variant(conn, "lever: ordered by type, event, device, time", rows)
    compress("cluster, host, type", "device, event, time")
    variant(conn, "lever: segmented by cluster, host and type", rows)
    compress("cluster, host", "type, device, event, time")
    key = "cluster, host, time, type, device, event"
    conn.execute(f"CREATE TEMP TABLE kept AS SELECT {key}, unit, jobid FROM host_data")
    conn.execute("ALTER TABLE host_data DROP COLUMN unit")
    variant(conn, "lever: no unit per row (it follows from type and event)", rows)
    conn.execute("ALTER TABLE host_data DROP COLUMN jobid")
    variant(conn, "lever: no unit and no job id per row", rows)
    conn.execute("ALTER TABLE host_data ADD COLUMN jobid text, ADD COLUMN unit text")
    conn.execute(f"UPDATE host_data h SET unit = k.unit, jobid = k.jobid FROM kept k"
                 f" WHERE ({', '.join('h.' + c for c in key.split(', '))})"
                 f" = ({', '.join('k.' + c for c in key.split(', '))})")
    conn.execute("DROP TABLE kept")


def exact_variant(conn: psycopg.Connection, rows: int) -> None:
    """The same lever kept exact: each row's real interval (the fixture's sample
    times are jittered: 299.953992 s, 300.000563 s, ...) stored beside the raw
    delta, and the float ``value`` kept where ``raw * factor / dt`` does not give
    it back bit for bit (a sum over devices rounds per device)."""
    dts = fixture_dts()
    conn.execute("UPDATE host_data SET value = raw * factor / dt, raw = NULL, factor = NULL,"
                 " dt = NULL WHERE raw IS NOT NULL")
    step = f"(extract(epoch FROM time - '{DAY.isoformat()}'::timestamptz) / {STEP_S})::int - 1"
    node = "substr(host, 2)::int"
    conn.execute(f"UPDATE host_data SET dt = (%s::float8[])[(({step} + 5 * {node}) %% %s) + 1]"
                 " WHERE unit LIKE '%%/s'", (dts, len(dts)))
    scale = "CASE WHEN unit = 's/s' THEN 0.01 ELSE 1 END"
    conn.execute(f"UPDATE host_data SET raw = round(value * dt / {scale}), factor = {scale}"
                 " WHERE dt IS NOT NULL")
    (kept,) = conn.execute("SELECT count(*) FROM host_data WHERE raw IS NOT NULL AND"
                           " raw * factor / dt IS DISTINCT FROM value").fetchone()
    conn.execute("UPDATE host_data SET raw = NULL, factor = NULL, dt = NULL WHERE"
                 " raw IS NOT NULL AND raw * factor / dt IS DISTINCT FROM value")
    conn.execute("UPDATE host_data SET value = NULL WHERE raw IS NOT NULL")
    print(f"exact: {kept:,} counter rows ({kept / rows:.1%} of all) keep their float value")
    variant(conn, "estimate, exact: raw deltas, the real intervals, float where inexact", rows)


def fixture_dts() -> list[float]:
    """The real file's sample intervals (seconds) of its full 5-minute intervals,
    in the order ``fixture_intervals`` returns them."""
    times = sorted({float(line.split()[0]) for line in FIXTURE.read_text().splitlines()
                    if line[:1].isdigit()})
    return [b - a for a, b in zip(times, times[1:], strict=False)][-len(fixture_intervals()):]


if __name__ == "__main__":
    main()
