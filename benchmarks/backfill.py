"""Backfill: rebuild every hour of an archive into host_data, against a bare COPY.

``python -m benchmarks.backfill [--days 7] [--nodes 1000] [--fixture-nodes 100]
[--fixture-hours 24] [--workers N[,M...]] [--hours-per-run N]``

What a site does after fixing a rate rule: rebuild host_data from the raw
archive. The archive holds ``--days`` of a ``--nodes`` demo-size cluster and,
on its first day, ``--fixture-hours`` of ``--fixture-nodes`` nodes shaped like
the Stampede3 fixture (5-minute samples, archived with ``store_messages``:
validation, fsync, index). Every hour is then rebuilt with
``build_host_data`` (archive slice -> parse -> rates -> COPY, what the
host_data asset runs for its partitions) on a private embedded PostgreSQL,
in runs of ``--hours-per-run`` hours (default ``HPCPERF_HOURS_PER_RUN``, the
host_data backfill policy's) by ``--workers`` processes side by side
(default: every core), the way a Dagster backfill under a concurrency pool
launches them. Several
``--workers`` counts (default ``1,<cores>``) rebuild the same hours one
count after another, ``host_data`` emptied before each (a build writes only
what changed, so a second pass over loaded hours would write nothing): the
1-worker pass is the baseline of the others, in the same run.

Reported: archive MB/s, hours of cluster data rebuilt per minute, rows/s,
and as the baseline measured in the same run, a bare COPY of exactly the
rows the rebuild wrote (read back, then copied into an empty scratch copy of
host_data, one hour at a time, one process). Per day of the archive, for
each worker count: the hours per minute of that day's window and its runs'
rows/s (a rebuild that slowed as host_data grows would show as later days
falling behind the first), and the peak RSS of one run (``VmHWM``, reset
before each run), against the memory bound ``HPCPERF_CHUNK_MAX_BYTES``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.config import settings
from hpcperfstats.db import embedded
from hpcperfstats.db.load import HOST_DATA_COLUMNS, copy_frame
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.chunks import chunk_max_bytes
from hpcperfstats.ingest.drain import store_messages

START = datetime(2026, 11, 20, tzinfo=UTC)


def say(msg: str) -> None:
    print(f"[backfill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def archive(cfgs: list[DemoConfig], root: Path) -> tuple[int, int]:
    """Archive the clusters' messages: (messages, bytes)."""
    messages = nbytes = 0
    for cfg in cfgs:
        t0 = time.perf_counter()

        def bodies(cfg: DemoConfig = cfg):
            nonlocal nbytes
            for m in iter_messages(cfg):
                body = m.text.encode()
                nbytes += len(body)
                yield body

        result = store_messages(bodies(), root / "archive", root / "quarantine")
        messages += result.messages
        say(f"archived {result.messages} messages of {cfg.nodes} {cfg.shape} nodes x "
            f"{cfg.hours} h in {time.perf_counter() - t0:.0f} s")
    return messages, nbytes


@dataclass
class Built:
    """One run (``hours`` hours from ``start``), as its worker saw it."""

    start: datetime
    hours: int
    rows: int
    seconds: float  # the build's own
    began: float  # epoch seconds, comparable across workers
    ended: float
    peak_rss: int  # bytes: the worker's peak RSS during this run alone (0: unknown)


def _peak_rss(reset: bool = False) -> int:
    """Peak RSS of this process (``VmHWM``) in bytes; ``reset`` starts it over
    (Linux: ``clear_refs`` 5), so each run's peak is its own, not the worker's."""
    try:
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _build(url: str, archive_dir: str, start: datetime, hours: int) -> Built:
    """One run: ``hours`` hours from ``start``, as the host_data asset builds them."""
    _peak_rss(reset=True)
    began = time.time()
    with psycopg.connect(url) as conn:
        result = build_host_data(conn, Path(archive_dir), start, start + timedelta(hours=hours),
                                 3600)
    return Built(start, hours, result.rows, result.seconds, began, time.time(), _peak_rss())


def rebuild(url: str, archive_dir: Path, hours: list[datetime], workers: int,
            per_run: int) -> tuple[int, float, list[Built]]:
    """Every hour, in runs of ``per_run`` hours, ``workers`` runs at a time:
    (rows, wall seconds, each run)."""
    t0 = time.perf_counter()
    rows = 0
    built = []
    runs = [(h, min(per_run, len(hours) - i)) for i, h in enumerate(hours) if i % per_run == 0]
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(_build, url, str(archive_dir), h, n) for h, n in runs]
        for n, future in enumerate(futures, 1):
            built.append(future.result())
            rows += built[-1].rows
            if n % max(1, len(runs) // 10) == 0:
                say(f"  {n}/{len(runs)} runs, {rows:,} rows, "
                    f"{time.perf_counter() - t0:.0f} s")
    return rows, time.perf_counter() - t0, built


def per_day(built: list[Built]) -> list[tuple[str, int, int, float, float, int]]:
    """Per day of the archive (a run counts on the day it starts): (day,
    hours, rows, hours per minute of the day's window (its first run's start
    to its last one's end), rows/s of its runs (rows over their summed own
    seconds), peak RSS of one run)."""
    days: dict[str, list[Built]] = defaultdict(list)
    for b in built:
        days[b.start.strftime("%Y-%m-%d")].append(b)
    out = []
    for day, bs in sorted(days.items()):
        window = max(b.ended for b in bs) - min(b.began for b in bs)
        rows, hours = sum(b.rows for b in bs), sum(b.hours for b in bs)
        out.append((day, hours, rows, hours / window * 60 if window else 0.0,
                    rows / sum(b.seconds for b in bs), max(b.peak_rss for b in bs)))
    return out


def bare_copy(url: str, hours: list[datetime]) -> tuple[int, float]:
    """The rebuilt rows, hour by hour, COPYed into an empty scratch table: (rows, s)."""
    seconds = 0.0
    rows = 0
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS backfill_bare_copy")
        conn.execute("CREATE TABLE backfill_bare_copy (LIKE host_data INCLUDING ALL)")
        conn.commit()
        for h in hours:
            frame = pl.read_database(
                f"SELECT {', '.join(HOST_DATA_COLUMNS)} FROM host_data "
                "WHERE time >= %s AND time < %s", conn,
                execute_options={"params": (h, h + timedelta(hours=1))}, infer_schema_length=None)
            t0 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                rows += copy_frame(cur, "backfill_bare_copy", frame, HOST_DATA_COLUMNS)
            seconds += time.perf_counter() - t0
        conn.execute("DROP TABLE backfill_bare_copy")
        conn.commit()
    return rows, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--fixture-nodes", type=int, default=100)
    parser.add_argument("--fixture-hours", type=int, default=24)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="worker counts, comma-separated, each a pass over every hour")
    parser.add_argument("--hours-per-run", type=int, default=settings().hours_per_run,
                        help="hours per run (default HPCPERF_HOURS_PER_RUN)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    cfgs = [DemoConfig(gpu_nodes=0, nodes=args.nodes, hours=24 * args.days, start=START)]
    if args.fixture_nodes:
        cfgs.append(DemoConfig.of_shape("fixture", nodes=args.fixture_nodes,
                                        hours=args.fixture_hours, start=START, first_rack=500))
    root = Path(tempfile.mkdtemp(prefix="hpcperf-backfill-"))
    root.chmod(0o755)
    try:
        messages, nbytes = archive(cfgs, root)
        hours = [START + timedelta(hours=h) for h in range(24 * args.days)]
        say(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        with embedded.running(root / "pg" / "data") as url:
            with psycopg.connect(url) as conn:
                ensure_schema(conn)
            passes = []
            for workers in counts:
                with psycopg.connect(url) as conn:
                    conn.execute("TRUNCATE host_data")
                say(f"rebuild with {workers} workers, load average {os.getloadavg()[0]:.1f}")
                passes.append((workers, *rebuild(url, root / "archive", hours, workers,
                                                 args.hours_per_run)))
            bare_rows, bare_s = bare_copy(url, hours)
        mb = nbytes / 1e6
        print()
        print(f"## backfill: {args.days} d x {args.nodes} demo nodes + {args.fixture_hours} h x "
              f"{args.fixture_nodes} fixture-shaped nodes ({messages:,} messages, {mb:.0f} MB "
              f"archived), {len(hours)} hours in runs of {args.hours_per_run} h, on "
              f"{os.cpu_count()} CPUs")
        bare = bare_rows / bare_s
        base_wall = passes[0][2]
        print("| workers | wall s | MB/s | hours per minute | host_data rows/s | "
              f"vs {passes[0][0]} worker(s) | vs bare COPY |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for workers, rows, wall, _ in passes:
            print(f"| {workers} | {wall:.1f} | {mb / wall:.1f} | {len(hours) / wall * 60:.1f} | "
                  f"{rows:,} at {rows / wall:,.0f} | {base_wall / wall:.2f}x | "
                  f"{rows / wall / bare:.2f}x |")
        print(f"\nbare COPY of the same rows (one process): {bare_rows:,} at {bare:,.0f} rows/s")
        print(f"\nper day (memory bound HPCPERF_CHUNK_MAX_BYTES = "
              f"{chunk_max_bytes() / 2**20:.0f} MiB of raw text per piece):")
        print("| workers | day | hours | rows | hours per minute | rows/s of its runs | "
              "peak RSS of one run |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for workers, _, _, built in passes:
            for day, n, rows, per_min, rate, peak in per_day(built):
                print(f"| {workers} | {day} | {n} | {rows:,} | {per_min:.1f} | {rate:,.0f} | "
                      f"{peak / 2**20:.0f} MiB |")
        print(f"\nload average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
