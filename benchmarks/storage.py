"""Bytes per stored value and per node-day: plain table vs compressed hypertable.

``python -m benchmarks.storage [--nodes 1000] [--fixture-nodes 100]``. Needs
TimescaleDB built into the embedded PostgreSQL (``scripts/setup`` does it).

Two data sets, each one day at 5-minute sampling, loaded into ``host_data``
exactly as the pipeline loads it:

- **demo**: ``DemoConfig(nodes)`` through the archive and ``build_host_data``
  hour by hour (the Dagster asset's path). Synthetic: it compresses better
  than real data.
- **fixture-shaped**: the real Stampede3 file's rows (128 CPUs, 8 NUMA nodes,
  NVMe, per-process lines; its 16 full 5-minute intervals) tiled over the
  day, each node starting at another interval, so every value-to-value step
  is a real one.

For each, the baseline is the same rows in a plain table with the plain
path's indexes (primary key + BRIN on time), measured in the same run;
then the hypertable before and after compressing every chunk, and the same
rows compressed the way migrations 1-4 stored them (``BEFORE``), so a
storage change is judged in one run on one data set. Sizes include
indexes and TOAST (``pg_total_relation_size`` / ``hypertable_size``). A
stored value is one ``host_data`` row (its rate or gauge; the raw delta
rides along until migration 5). Also printed: rows per node-hour and index
bytes per row of the uncompressed chunks (what chunk sizing needs, see
docs/operations.md), and the time to rebuild one hour in an uncompressed and
in a compressed chunk. Anchors: Prometheus' TSDB about 1.3-2 bytes per sample, PCP
archives about 70 MB per node-day. Goal: at most 4 bytes per value compressed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.db import embedded
from hpcperfstats.db.load import (
    HOST_DATA_COLUMNS,
    copy_frame,
    read_frame,
    replace_host_data,
    with_cluster,
)
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.db.tables import HOST_DATA
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
from hpcperfstats.ingest.drain import store_messages

FIXTURE = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"
           / "stampede3-c571-001.raw")
DAY = datetime(2026, 3, 18, tzinfo=UTC)
STEP_S = 300
CLUSTER = "bench"


def demo_rows(conn: psycopg.Connection, root: Path, nodes: int) -> int:
    """One demo day through archive and build_host_data, hour by hour."""
    cfg = DemoConfig(gpu_nodes=0, nodes=nodes, hours=24)
    store_messages((m.text.encode() for m in iter_messages(cfg)), root / "archive",
                   root / "quarantine")
    rows = 0
    for h in range(cfg.hours):
        start = cfg.start + timedelta(hours=h)
        rows += build_host_data(conn, root / "archive", start, start + timedelta(hours=1),
                                3600, cluster=CLUSTER).rows
    return rows


def fixture_intervals() -> list[pl.DataFrame]:
    """The real file's host_data rows, one frame per 5-minute interval, times made relative.

    The file's first sample starts every counter's series (gauges only, no
    rates): tiled, it would put a gap into every counter series every 17
    intervals, which a node reporting all day never has (and which costs the
    time column a third of its compressed size). Only the full intervals are kept.
    """
    parsed = long_frame_of_chunks([Chunk(FIXTURE.read_text())])
    rows = host_rows(parsed.frame)
    times = rows["time"].unique().sort()
    frames = [rows.filter(pl.col("time") == t).drop("time", "host") for t in times]
    full = max(f.height for f in frames)
    return [f for f in frames if f.height == full]


def fixture_rows(conn: psycopg.Connection, nodes: int) -> int:
    """``nodes`` fixture-shaped nodes for one day, loaded with COPY hour by hour."""
    intervals = fixture_intervals()
    steps = 24 * 3600 // STEP_S
    rows = 0
    for hour in range(24):
        parts = []
        for node in range(nodes):
            for step in range(hour * 12, (hour + 1) * 12):
                base = intervals[(step + 5 * node) % len(intervals)]
                parts.append(base.with_columns(
                    pl.lit(DAY + timedelta(seconds=STEP_S * (step + 1))).alias("time"),
                    pl.lit(f"f{node:04d}").alias("host")))
        frame = pl.concat(parts).filter(pl.col("time") < DAY + timedelta(seconds=steps * STEP_S))
        with conn.transaction(), conn.cursor() as cur:
            rows += copy_frame(cur, "host_data", with_cluster(frame, CLUSTER), HOST_DATA_COLUMNS)
    return rows


#: host_data as migrations 1-4 stored it, for the "before" row: a float ``delta``
#: (value x interval; every interval here is 300 s), TimescaleDB's automatic
#: sparse indexes (a composite bloom filter over the key), 6-hour compressed chunks
BEFORE = """
CREATE TABLE host_data_v4 (LIKE host_data INCLUDING DEFAULTS, delta double precision,
                           PRIMARY KEY (host, time, type, device, event, cluster));
SELECT create_hypertable('host_data_v4', 'time', chunk_time_interval => interval '6 hours');
ALTER TABLE host_data_v4 SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'cluster, host',
    timescaledb.compress_orderby = 'type, device, event, time');
INSERT INTO host_data_v4 SELECT *, CASE WHEN unit LIKE '%/s' THEN value * 300 END
FROM host_data ORDER BY host, time;
SELECT compress_chunk(c) FROM show_chunks('host_data_v4') c;
"""


def rebuild_hour(conn: psycopg.Connection) -> tuple[float, int]:
    """Seconds to replace the data's 13th hour by the same rows (a late-sample
    rebuild), and the rows replaced."""
    (first,) = conn.execute("SELECT date_trunc('hour', min(time)) FROM host_data").fetchone()
    hour = first.astimezone(UTC) + timedelta(hours=12)
    cols = ", ".join(c for c in HOST_DATA_COLUMNS if c != "cluster")
    frame = read_frame(conn, f"SELECT {cols} FROM host_data WHERE time >= %s AND time < %s",
                       (hour, hour + timedelta(hours=1)), HOST_DATA.schema)
    t0 = time.perf_counter()
    replace_host_data(conn, frame, hour, hour + timedelta(hours=1), cluster=CLUSTER)
    return time.perf_counter() - t0, frame.height


def sizes(conn: psycopg.Connection) -> dict[str, int]:
    """Plain copy, hypertable, hypertable after compressing every chunk, and the same
    rows compressed as before migration 5 (bytes); an hour rebuilt, before and after."""
    conn.execute("DROP TABLE IF EXISTS host_data_plain")
    conn.execute("CREATE TABLE host_data_plain (LIKE host_data INCLUDING DEFAULTS)")
    conn.execute("INSERT INTO host_data_plain SELECT * FROM host_data ORDER BY host, time")
    conn.execute("ALTER TABLE host_data_plain ADD PRIMARY KEY (host, time, type, device, event,"
                 " cluster)")
    conn.execute("CREATE INDEX ON host_data_plain USING brin (time)")
    conn.execute("VACUUM ANALYZE host_data_plain")
    plain = conn.execute("SELECT pg_total_relation_size('host_data_plain')").fetchone()[0]
    hyper = conn.execute("SELECT hypertable_size('host_data')").fetchone()[0]
    heap, index = conn.execute("SELECT table_bytes, index_bytes"
                               " FROM hypertable_detailed_size('host_data')").fetchone()
    rebuild_plain = rebuild_hour(conn)
    conn.execute(BEFORE)
    conn.execute("VACUUM host_data_v4")
    before = conn.execute("SELECT hypertable_size('host_data_v4')").fetchone()[0]
    conn.execute("DROP TABLE host_data_v4")
    t0 = time.perf_counter()
    conn.execute("SELECT compress_chunk(c, if_not_compressed => true) "
                 "FROM show_chunks('host_data') c")
    seconds = time.perf_counter() - t0
    conn.execute("VACUUM host_data")  # what autovacuum does after the merge of chunks
    compressed = conn.execute("SELECT hypertable_size('host_data')").fetchone()[0]
    parts = conn.execute(
        "SELECT sum(after_compression_table_bytes), sum(after_compression_index_bytes), "
        "sum(after_compression_toast_bytes), count(*) FROM chunk_compression_stats('host_data')"
    ).fetchone()
    rebuild_compressed = rebuild_hour(conn)
    conn.execute("DROP TABLE host_data_plain")
    return {"plain": plain, "hypertable": hyper, "before": before, "compressed": compressed,
            "compress_s": seconds, "parts": parts, "heap": heap, "index": index,
            "rebuild": (rebuild_plain, rebuild_compressed)}


def report(name: str, nodes: int, rows: int, size: dict[str, int]) -> None:
    print(f"\n{name}: {nodes} nodes x 1 day, {rows:,} values ({rows / nodes:,.0f} per node-day)")
    print("| storage | bytes/value | MB/node-day | vs plain |")
    print("| --- | --- | --- | --- |")
    names = {"plain": "plain", "hypertable": "hypertable", "compressed": "compressed",
             "before": "compressed before migration 5"}
    for key in ("plain", "hypertable", "before", "compressed"):
        b = size[key]
        ratio = ("baseline" if key == "plain" else f"{size['plain'] / b:.1f}x smaller"
                 if b <= size["plain"] else f"{b / size['plain']:.1f}x larger")
        print(f"| {names[key]} | {b / rows:.2f} | {b / nodes / 1e6:.2f} | {ratio} |")
    table, index, toast, chunks = size["parts"]
    print(f"(compressed: {chunks} chunks, table {table / rows:.2f} + index {index / rows:.2f} + "
          f"TOAST {toast / rows:.2f} bytes/value; compressing took {size['compress_s']:.1f} s)")
    print(f"uncompressed chunks: {rows / nodes / 24:,.0f} rows per node-hour, heap "
          f"{size['heap'] / rows:.1f} + indexes {size['index'] / rows:.1f} bytes per row")
    (plain_s, hour_rows), (compressed_s, _) = size["rebuild"]
    print(f"rebuilding one hour ({hour_rows:,} rows): {plain_s:.2f} s uncompressed, "
          f"{compressed_s:.2f} s in a compressed chunk ({compressed_s / plain_s:.1f}x)")


def measure(url: str, name: str, nodes: int, load) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        conn.execute("TRUNCATE host_data")
        rows = load(conn)
        report(name, nodes, rows, sizes(conn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000, help="demo nodes (1 day)")
    parser.add_argument("--fixture-nodes", type=int, default=100,
                        help="fixture-shaped nodes (1 day)")
    args = parser.parse_args()
    if not embedded.timescale_installed():
        raise SystemExit("TimescaleDB is not built into the embedded server: run scripts/setup")
    with tempfile.TemporaryDirectory(prefix="hpcperf-storage-") as tmp:
        root = Path(tmp)
        with embedded.running(root / "pg") as url:
            measure(url, "fixture-shaped (Stampede3 types and sizes)", args.fixture_nodes,
                    lambda conn: fixture_rows(conn, args.fixture_nodes))
            measure(url, "demo cluster", args.nodes,
                    lambda conn: demo_rows(conn, root, args.nodes))


if __name__ == "__main__":
    main()
