"""Latency of the data API over HTTP: job search over a million jobs, one big job's series.

``python -m benchmarks.api [--jobs N] [--hosts H] [--hours T] [--requests R]``

Loads a private embedded PostgreSQL as ``benchmarks.dashboards`` does (one
million jobs; one H-node, T-hour job with its ``job_series``), starts the
real dashboards server on it (basic sign-in; API tokens for a staff member
and a researcher), and times R sequential requests per case after a warm-up:
p50 and p95 in milliseconds. Two baselines measured in the same run give the
ratios: ``/api/v1/me`` (the server's floor: identity and one token lookup)
and the same query called in-process (``data.list_jobs``), so the table shows
what HTTP and JSON add. Goal: p95 under 300 ms for search and for the series.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

from benchmarks.dashboards import BIG_JOB, load_big_job, load_jobs, store_job_series
from dashboards.api import make_cursor
from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parent.parent


def quantiles(times: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18]  # p50, p95


def timed(fn, requests: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return quantiles(times)


def fetch(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return answer.read()


def serve(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    from dashboards.users import hash_password, save

    home.mkdir(parents=True, exist_ok=True)
    users = home / "users.json"
    save(users, {"staffer": hash_password("x" * 12, rounds=4)})
    port = free_port()
    env = dict(os.environ, HPCPERF_DATABASE_URL=url, HPCPERF_HOME=str(home),
               HPCPERF_WEB_PORT=str(port), HPCPERF_AUTH="basic",
               HPCPERF_BASIC_AUTH_FILE=str(users), HPCPERF_STAFF="staffer",
               HPCPERF_WEB_SECRET="benchmark-secret-" + "x" * 32)
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dashboards.serve"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=5).read()
            return proc, base
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"the server did not start: see {home / 'serve.log'}")


def run(url: str, args: argparse.Namespace, home: Path) -> None:
    from dashboards import data, tokens
    from dashboards.auth import Viewer

    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        t0 = time.perf_counter()
        load_jobs(conn, args.jobs)
        load_big_job(conn, args.hosts, args.hours)
        stored = store_job_series(conn)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        staff, owner = tokens.create(conn, "staffer"), tokens.create(conn, "user0001")
    print(f"loaded {args.jobs:,} jobs and a {args.hosts}-node {args.hours} h job "
          f"({stored:,} job_series rows) in {time.perf_counter() - t0:.0f} s")
    proc, base = serve(url, home)
    try:
        def in_process() -> None:
            with psycopg.connect(url) as conn:
                data.list_jobs(conn, data.JobFilter(), Viewer("staffer", staff=True))

        api = f"{base}/api/v1"
        with psycopg.connect(url) as conn:  # the cursor of the 10,001st job in each order
            deep = {}
            for sort, order in (("cpu_eff", "asc"), ("end", "desc")):
                row = data.list_jobs(conn, data.JobFilter(), Viewer("staffer", staff=True),
                                     sort=sort, descending=order == "desc", limit=1,
                                     offset=9_999, count=False)[0].row(0, named=True)
                deep[sort] = make_cursor(sort, order, data.page_key(row, sort))
        cases = [
            ("baseline: /api/v1/me (identity + token)", lambda: fetch(f"{api}/me", staff)),
            ("baseline: list_jobs in-process (staff, newest 50)", in_process),
            (f"search, {args.jobs:,} jobs (staff, newest 50)",
             lambda: fetch(f"{api}/jobs", staff)),
            ("search (researcher, own jobs)", lambda: fetch(f"{api}/jobs", owner)),
            ("search: name contains + metric range",
             lambda: fetch(f"{api}/jobs?name=run-42&metric=cpu_efficiency&metric_max=0.5",
                           staff)),
            ("search: offset 10,000 sorted by CPU efficiency",
             lambda: fetch(f"{api}/jobs?sort=cpu_eff&order=asc&offset=10000", staff)),
            ("search: the same page by cursor",
             lambda: fetch(f"{api}/jobs?sort=cpu_eff&order=asc&cursor={deep['cpu_eff']}",
                           staff)),
            ("search: newest first, page 201 by cursor",
             lambda: fetch(f"{api}/jobs?cursor={deep['end']}", staff)),
            ("search: partition + state + min nodes",
             lambda: fetch(f"{api}/jobs?partition=gpu&state=FAILED&min_nodes=8", staff)),
            ("search: flag, sorted by runtime",
             lambda: fetch(f"{api}/jobs?flag=low_cpu_efficiency&sort=runtime", staff)),
            (f"one job's series, {args.hosts} nodes x {args.hours} h (JSON)",
             lambda: fetch(f"{api}/jobs/{BIG_JOB}/series", owner)),
            ("same series as Parquet", lambda: fetch(f"{api}/jobs/{BIG_JOB}/series?"
                                                     "format=parquet", owner)),
            ("same series, mean/min/max over the hosts",
             lambda: fetch(f"{api}/jobs/{BIG_JOB}/series?aggregate=hosts", owner)),
            ("same series, one host, 576 points",
             lambda: fetch(f"{api}/jobs/{BIG_JOB}/series?host=b0001&points=576", owner)),
            ("one job's report", lambda: fetch(f"{api}/jobs/{BIG_JOB}", owner)),
        ]
        print(f"{'case':58s} {'p50':>7s} {'p95':>7s} {'p95/floor':>9s}", flush=True)
        floor = None
        for name, fn in cases:  # each line as it is measured
            p50, p95 = timed(fn, args.requests)
            floor = floor or p95
            print(f"{name:58s} {p50 * 1000:5.0f}ms {p95 * 1000:5.0f}ms {p95 / floor:8.1f}x",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=128)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
        with embedded.running(Path(tmp) / "pgdata") as url:
            run(url, args, Path(tmp) / "home")


if __name__ == "__main__":
    main()
