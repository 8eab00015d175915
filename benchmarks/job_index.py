"""Does host_data want an index on (jobid, time)? Job reads and COPY, with and without.

``python -m benchmarks.job_index [--nodes 200] [--hours 6]``. The rows of a
demo cluster are loaded into host_data on a private embedded PostgreSQL.
For every job, its rows are read two ways: through its hosts and time range
(the primary key's prefix (host, time), what the job pages do) and by
``jobid`` with an index on (jobid, time). The COPY of all rows is timed
without and with that index, in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import psycopg
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.db import embedded
from hpcperfstats.db.load import HOST_DATA_COLUMNS, copy_frame, with_cluster
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.load import compute_window
from hpcperfstats.ingest.drain import store_messages

INDEX = "CREATE INDEX host_data_jobid_time ON host_data (jobid, time)"


def load(conn: psycopg.Connection, rows: pl.DataFrame) -> float:
    conn.execute("TRUNCATE host_data")
    conn.commit()
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        copy_frame(cur, "host_data", with_cluster(rows, "bench"), HOST_DATA_COLUMNS)
    return time.perf_counter() - t0


def reads(conn: psycopg.Connection, jobs: list, by_job: bool) -> float:
    t0 = time.perf_counter()
    for jobid, hosts, start, end in jobs:
        if by_job:
            conn.execute("SELECT time, host, type, event, value FROM host_data "
                         "WHERE jobid = %s AND time BETWEEN %s AND %s", (jobid, start, end)
                         ).fetchall()
        else:
            conn.execute("SELECT time, host, type, event, value FROM host_data "
                         "WHERE host = ANY(%s) AND time BETWEEN %s AND %s", (hosts, start, end)
                         ).fetchall()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--hours", type=int, default=6)
    args = parser.parse_args()
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, hours=args.hours)
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
        root = Path(tmp)
        store_messages([m.text.encode() for m in iter_messages(cfg)], root / "a", root / "q")
        hours = [cfg.start + timedelta(hours=h) for h in range(cfg.hours)]
        rows = pl.concat([compute_window(root / "a", s, s + timedelta(hours=1), 3600)[0]
                          for s in hours])
        with embedded.running(root / "pg") as url:
            with psycopg.connect(url) as conn:
                ensure_schema(conn)
                conn.execute("DROP INDEX IF EXISTS host_data_jobid_time")
                plain = load(conn, rows)
                conn.execute("ANALYZE host_data")
                jobs = conn.execute(
                    "SELECT jobid, array_agg(DISTINCT host), min(time), max(time) "
                    "FROM host_data WHERE jobid IS NOT NULL GROUP BY jobid").fetchall()
                by_hosts = reads(conn, jobs, by_job=False)
                conn.execute(INDEX)
                conn.commit()
                indexed = load(conn, rows)
                conn.execute("ANALYZE host_data")
                by_jobid = reads(conn, jobs, by_job=True)
                conn.execute("DROP INDEX host_data_jobid_time")
                conn.commit()
    n = rows.height
    print(f"{n} rows, {len(jobs)} jobs")
    print(f"baseline: COPY, primary key only   {plain:7.2f} s  {n / plain:9.0f} rows/s")
    print(f"COPY with (jobid, time) index      {indexed:7.2f} s  {n / indexed:9.0f} rows/s  "
          f"{indexed / plain:5.2f}x the time")
    print(f"baseline: job reads by hosts+range {by_hosts:7.2f} s  "
          f"{len(jobs) / by_hosts:7.0f} jobs/s")
    print(f"job reads by jobid (indexed)       {by_jobid:7.2f} s  "
          f"{len(jobs) / by_jobid:7.0f} jobs/s  {by_jobid / by_hosts:5.2f}x the time")


if __name__ == "__main__":
    main()
