"""Job tables for one day of a demo cluster: seconds, and job_series rows/s.

``python -m benchmarks.jobs [--nodes 1000] [--chunk-hosts 256]``. Setup (not
timed as the result): the demo cluster's day 2026-11-20 00:00-24:00 UTC
(5-minute samples, the demo's job sizes of 1-4 nodes and the scripted jobs)
is archived, host_data built hour by hour and the accounting loaded into a
private embedded PostgreSQL. Timed: ``build_job_days`` for that day (job
series, metrics and coverage of every job that ended in it, in chunks of at
most ``--chunk-hosts`` hosts) and ``build_job_flags``; the setup runs in a
child process, so the peak RSS reported is the job step's and shows the
chunking's memory bound.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from hpcperf_demo.cluster import DemoConfig, make_plan
from hpcperf_demo.generate import accounting_files, iter_messages

from hpcperfstats.config import cluster_name
from hpcperfstats.db import embedded
from hpcperfstats.db.load import upsert_job_data
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.flags.load import build_job_flags
from hpcperfstats.flags.rules import load_rules
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import store_messages
from hpcperfstats.jobs.accounting import parse_accounting
from hpcperfstats.jobs.load import build_job_days


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(url: str, root: Path, cfg: DemoConfig) -> None:
    t0 = time.perf_counter()
    plan = make_plan(cfg)
    store_messages((m.text.encode() for m in iter_messages(cfg, plan)), root / "archive",
                   root / "quarantine")
    t1 = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        for h in range(cfg.hours + 1):
            start = cfg.start + timedelta(hours=h)
            rows += build_host_data(conn, root / "archive", start, start + timedelta(hours=1),
                                    3600).rows
        for day, text in accounting_files(cfg, plan).items():
            jobs, _ = parse_accounting(text, source=day)
            upsert_job_data(conn, jobs, date.fromisoformat(day), cluster=cluster_name())
    print(f"setup: {cfg.nodes} nodes x {cfg.hours} h archived in {t1 - t0:.0f} s, "
          f"{rows:,} host_data rows in {time.perf_counter() - t1:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--chunk-hosts", type=int, default=256)
    args = parser.parse_args()
    os.environ["HPCPERF_JOB_CHUNK_HOSTS"] = str(args.chunk_hosts)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, start=day, hours=24)
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-jobs-") as tmp:
        root = Path(tmp)
        with embedded.running(root / "pg") as url:
            # in a child process, so the peak RSS below is the job step's own
            child = multiprocessing.get_context("fork").Process(target=setup,
                                                                args=(url, root, cfg))
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit(f"setup failed ({child.exitcode})")
            rss0 = rss_mb()
            with psycopg.connect(url) as conn:
                t0 = time.perf_counter()
                result = build_job_days(conn, day, day + timedelta(days=1))
                t1 = time.perf_counter()
                flags = build_job_flags(conn, day, day + timedelta(days=1), load_rules())
                t2 = time.perf_counter()
    secs = t1 - t0
    print(f"job day: {result.jobs} jobs ({result.jobs_with_data} with data) in "
          f"{result.chunks} chunks: {secs:.1f} s")
    print(f"  job_series: {result.series_rows:,} rows, {result.series_rows / secs:,.0f} rows/s "
          f"(whole step); job_metrics {result.metric_rows:,} rows; "
          f"job_coverage {result.coverage_rows:,} rows")
    print(f"  job_flags: {sum(flags.values())} flags in {t2 - t1:.2f} s")
    print(f"  peak RSS of the job step's process {rss_mb():.0f} MB (before it: {rss0:.0f} MB)")


if __name__ == "__main__":
    main()
