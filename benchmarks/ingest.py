"""host_data ingest of a demo cluster's day against a bare COPY of the same rows.

``python -m benchmarks.ingest [--nodes 1000] [--hours 24]``. The messages of
``DemoConfig(nodes, hours)`` (5-minute samples) are archived with
``store_messages`` (validation, fsync, index), then every hour is built with
``build_host_data`` (archive slice -> vectorised parse -> rates -> COPY into
host_data, as the Dagster asset does) on a private embedded PostgreSQL. The
baseline, measured in the same run into the same table, is a bare COPY of
exactly the rows each hour's build wrote, right after it (the hour deleted
first), so both sides see the same table and the same machine load. Goal: end-to-end
at least half the bare COPY rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.db import embedded
from hpcperfstats.db.load import HOST_DATA_COLUMNS, copy_frame, with_cluster
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.load import build_host_data, compute_window
from hpcperfstats.ingest.drain import store_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, hours=args.hours)
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        bodies = [m.text.encode() for m in iter_messages(cfg)]
        mb = sum(map(len, bodies)) / 1e6
        t1 = time.perf_counter()
        store = store_messages(bodies, root / "archive", root / "quarantine")
        del bodies
        t2 = time.perf_counter()
        print(f"{args.nodes} nodes x {args.hours} h: {store.messages} messages, {mb:.0f} MB; "
              f"generated in {t1 - t0:.1f} s, archived in {t2 - t1:.1f} s "
              f"({store.messages / (t2 - t1):.0f} msg/s)")
        with embedded.running(root / "pg") as url:
            run(url, root / "archive", cfg)


def run(url: str, archive: Path, cfg: DemoConfig) -> None:
    """Hour by hour, so load from other processes hits both sides alike:
    the end-to-end build, then a bare COPY of the very rows it wrote."""
    e2e = compute = bare = 0.0
    rows = 0
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        conn.execute("TRUNCATE host_data")
        conn.commit()
        for h in range(cfg.hours):
            start = cfg.start + timedelta(hours=h)
            end = start + timedelta(hours=1)
            t0 = time.perf_counter()
            rows += build_host_data(conn, archive, start, end, 3600, "bench").rows
            t1 = time.perf_counter()
            frame = compute_window(archive, start, end, 3600)[0]
            t2 = time.perf_counter()
            conn.execute("DELETE FROM host_data WHERE time >= %s AND time < %s", (start, end))
            conn.commit()
            t3 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                copy_frame(cur, "host_data", with_cluster(frame, "bench"), HOST_DATA_COLUMNS)
            t4 = time.perf_counter()
            e2e, compute, bare = e2e + t1 - t0, compute + t2 - t1, bare + t4 - t3
    print(f"host_data rows: {rows}")
    print(f"baseline: bare COPY           {bare:8.1f} s  {rows / bare:10.0f} rows/s")
    print(f"end-to-end (archive -> table) {e2e:8.1f} s  {rows / e2e:10.0f} rows/s  "
          f"{bare / e2e:5.2f}x the bare COPY rate (goal >= 0.5)")
    print(f"  parse + rates alone         {compute:8.1f} s  {rows / compute:10.0f} rows/s")


if __name__ == "__main__":
    main()
