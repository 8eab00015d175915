"""Server-side time to build the dashboards' heaviest pages on generated data.

``python -m benchmarks.dashboards [--jobs N] [--hosts H] [--hours T] [--repeat R]``

Starts a dedicated embedded PostgreSQL in a temporary directory, loads it
with binary ``COPY`` (one million jobs with two metrics each and flags on a
tenth of them; one H-node, T-hour job with five-minute samples of cpu, mem,
net, block and InfiniBand), then times, after one warm-up, what the server
does per page view: the queries, the Panel objects and Bokeh figures and their
Bokeh document (``server_doc``). The browser's own drawing is not included.
Goal: under one second each for a 128-node, 48-hour job page and for the
search page over a million jobs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from bokeh.document import Document

from hpcperfstats.config import cluster_name
from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.aggregates import refresh

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
GIB = 2**30
USERS = [f"user{i:04d}" for i in range(1000)]
STATES = ["COMPLETED"] * 8 + ["FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY"]
PARTITIONS = ["normal", "normal", "normal", "gpu", "large", "debug"]
BIG_JOB = "9999999"
CLUSTER = cluster_name()  # what the pages read


def load_jobs(conn: psycopg.Connection, count: int) -> None:
    rnd = random.Random(1)
    with conn.cursor() as cur:
        with cur.copy("COPY job_data (jobid, username, account, partition, jobname, state,"
                      " start_time, end_time, elapsed_s, nnodes, ncpus, req_mem_bytes, hosts,"
                      " cluster) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "text", "text", "text", "text", "timestamptz",
                            "timestamptz", "int8", "int4", "int4", "int8", "text[]", "text"])
            for i in range(count):
                user = USERS[rnd.randrange(len(USERS))]
                nodes = rnd.choice((1, 1, 1, 2, 4, 8, 16, 64))
                start = T0 + timedelta(seconds=i * 30 + rnd.randrange(600))
                elapsed = rnd.randrange(60, 48 * 3600)
                copy.write_row((str(1_000_000 + i), user, f"proj-{hash(user) % 200:03d}",
                                rnd.choice(PARTITIONS), f"run-{rnd.randrange(5000)}",
                                rnd.choice(STATES), start, start + timedelta(seconds=elapsed),
                                elapsed, nodes, nodes * 48, nodes * 192 * GIB,
                                [f"c{(i + k) % 4000:04d}" for k in range(min(nodes, 4))],
                                CLUSTER))
        with cur.copy("COPY job_metrics (jobid, metric, value, unit, day, source, cluster)"
                      " FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "float8", "text", "date", "text", "text"])
            for i in range(count):
                jobid = str(1_000_000 + i)
                day = (T0 + timedelta(seconds=i * 30)).date()
                copy.write_row((jobid, "cpu_efficiency", rnd.random(), "1", day, "node",
                                CLUSTER))
                copy.write_row((jobid, "mem_hwm_bytes", rnd.random() * 192 * GIB, "B", day,
                                "node", CLUSTER))
        with cur.copy("COPY job_flags (jobid, flag, value, threshold, message, advice,"
                      " rule_version, day, cluster) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "float8", "float8", "text", "text", "text", "date",
                            "text"])
            for i in range(0, count, 10):
                copy.write_row((str(1_000_000 + i), "low_cpu_efficiency", 0.2, 0.5,
                                "Your job kept 20% of its allocated cores busy.", "cores", "b",
                                (T0 + timedelta(seconds=i * 30)).date(), CLUSTER))


def load_big_job(conn: psycopg.Connection, hosts: int, hours: int) -> int:
    names = [f"b{h:04d}" for h in range(hosts)]
    samples = hours * 12
    start = T0 + timedelta(days=30)
    end = start + STEP * (samples - 1)
    events = {
        ("cpu", "s/s"): ["user", "nice", "system", "idle", "iowait", "irq", "softirq"],
        ("mem", "B"): ["MemTotal", "MemUsed", "FilePages", "Slab"],
        ("net", "B/s"): ["rx_bytes", "tx_bytes"],
        ("block", "B/s"): ["rd_sectors", "wr_sectors"],
        ("ib_ext", "B/s"): ["port_xmit_data", "port_rcv_data"],
    }
    rows = 0
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
            " start_time, end_time, elapsed_s, nnodes, ncpus, req_mem_bytes, hosts, cluster)"
            " VALUES (%s, 'user0001', 'proj-001', 'large', 'big-run', 'COMPLETED', %s, %s,"
            " %s, %s, %s, %s, %s, %s)",
            (BIG_JOB, start, end, int((end - start).total_seconds()), hosts, hosts * 48,
             hosts * 192 * GIB, names, CLUSTER))
        with cur.copy("COPY host_data (time, host, jobid, type, device, event, unit, value,"
                      " cluster) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "text", "text", "text", "text", "text", "text",
                            "float8", "text"])
            for h, host in enumerate(names):
                for i in range(samples):
                    t = start + STEP * i
                    for (type_, unit), evs in events.items():
                        for k, ev in enumerate(evs):
                            value = float((h * 7 + i * 3 + k * 11) % 97) * (GIB if unit == "B"
                                                                            else 1e6)
                            copy.write_row((t, host, BIG_JOB, type_, "", ev, unit, value,
                                            CLUSTER))
                            rows += 1
    return rows


def store_job_series(conn: psycopg.Connection) -> int:
    """What the pipeline's job_series asset (and its rollup) stores for the finished big
    job."""
    import polars as pl

    from dashboards.pages.job import JOB_SERIES
    from hpcperfstats.hostdata.series import SERIES, host_series
    from hpcperfstats.jobs.series import job_series_rollup
    from hpcperfstats.jobs.store import copy_day

    job = conn.execute("SELECT start_time, end_time, hosts FROM job_data WHERE jobid = %s",
                       (BIG_JOB,)).fetchone()
    frame = host_series(conn, job[2], job[0], job[1], [n for n in JOB_SERIES if n in SERIES])
    with conn.cursor() as cur, cur.copy(
            "COPY job_series (jobid, host, series, time, value, day, cluster) FROM STDIN"
    ) as copy:
        for time_, host, series, value, _unit in frame.iter_rows():
            copy.write_row((BIG_JOB, host, series, time_, value, job[1].date(), CLUSTER))
    # and its rollup, as the same pass of the pipeline builds it (no coverage here: the
    # sampling interval is unknown, so rates are cut as the plots cut them then)
    rows = frame.select(pl.lit(BIG_JOB).alias("jobid"), "host", "series", "time", "value")
    starts = pl.DataFrame({"jobid": [BIG_JOB], "start_time": [job[0]], "interval_s": [None]},
                          schema={"jobid": pl.Utf8, "start_time": pl.Datetime("us", "UTC"),
                                  "interval_s": pl.Float64})
    with conn.cursor() as cur:
        copy_day(cur, "job_series_rollup", job_series_rollup(rows, starts), job[1].date(),
                 cluster=CLUSTER)
    return frame.height


def timed(fn, repeat: int) -> tuple[float, float, float]:
    """Median and max wall time, and the median CPU time of this process (the page
    build without the database's share: on a loaded machine, steadier than wall time)."""
    fn()  # warm-up: imports, plans, caches
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), max(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=128)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--job-only", action="store_true", help="time the job page cases only")
    parser.add_argument("--browser", action="store_true",
                        help="also time first meaningful content in Chromium "
                             "(benchmarks.dashboards_browser)")
    parser.add_argument("--src", type=Path, default=None,
                        help="with --browser: also serve this source tree (a `git archive` "
                             "copy of the code before a change) and compare, visit by visit")
    parser.add_argument("--compress", action="store_true",
                        help="compress every host_data chunk first (TimescaleDB)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's top functions of one job page build "
                             "(stored series and from host_data)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        with embedded.running(pgdata) as url:
            run(url, args)


def run(url: str, args: argparse.Namespace) -> None:
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        t0 = time.perf_counter()
        load_jobs(conn, args.jobs)
        t1 = time.perf_counter()
        rows = load_big_job(conn, args.hosts, args.hours)
        t2 = time.perf_counter()
        stored = store_job_series(conn)
        # the 5-minute and hourly totals the pipeline's host_aggregates builds after host_data
        start = T0 + timedelta(days=30)
        refresh(conn, start, start + STEP * args.hours * 12)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"loaded {args.jobs:,} jobs in {t1 - t0:.1f} s; {rows:,} host_data rows for one "
          f"{args.hosts}-node {args.hours} h job in {t2 - t1:.1f} s; {stored:,} job_series rows;"
          " its host_agg and cluster_agg")

    os.environ["HPCPERF_DATABASE_URL"] = url
    os.environ["HPCPERF_AUTH"] = "none"
    import panel as pn

    from dashboards import data, long_range, timeseries
    from dashboards.auth import Viewer
    from dashboards.pages.job import job_view
    from dashboards.pages.jobs import JobSearch

    pn.extension("tabulator")
    data._URL = None
    researcher = Viewer("user0001", staff=False)

    def job_page(viewer=data.STAFF) -> Document:
        doc = Document()
        job_view(BIG_JOB, viewer).server_doc(doc)
        return doc

    def job_page_queries(stored: bool = True, aggregates: bool = True):
        """The page's database reads alone (``job_view``'s connection block)."""
        from dashboards.pages.job import CGROUP_SERIES, JOB_SERIES, _points

        real, closed = timeseries.stored_job_series, long_range.closed_part
        if not stored:
            timeseries.stored_job_series = lambda *a, **k: real(*a, **k).clear()
        if not aggregates:
            long_range.closed_part = lambda *a, **k: None
        try:
            with data.connection() as conn:
                job = data.job_record(conn, BIG_JOB, data.STAFF)
                data.job_metrics(conn, BIG_JOB)
                data.job_flags(conn, BIG_JOB)
                data.job_coverage(conn, BIG_JOB)
                data.used_sources(conn, BIG_JOB)
                timeseries.job_series(conn, job, [*CGROUP_SERIES, *JOB_SERIES],
                                      max_points=_points(job))
                long_range.hosts_extra(conn, list(job["hosts"]), *timeseries.job_window(job),
                                       _points(job))
        finally:
            timeseries.stored_job_series, long_range.closed_part = real, closed

    def running_job_page(aggregates: bool = True):
        """The same job while it runs: no job_series rows yet, read from host_data (the
        hours host_aggregates has built from host_agg; ``aggregates=False``: every raw
        row, as before issue 19's second round: the baseline of the same run)."""
        real, closed = timeseries.stored_job_series, long_range.closed_part
        timeseries.stored_job_series = lambda *a, **k: real(*a, **k).clear()
        if not aggregates:
            long_range.closed_part = lambda *a, **k: None
        try:
            job_page()
        finally:
            timeseries.stored_job_series, long_range.closed_part = real, closed

    def search_page(viewer=data.STAFF):
        JobSearch(viewer).view().server_doc(Document())

    def search_sorted_by_efficiency():
        page = JobSearch(data.STAFF)
        page.table.sorters = [{"field": "cpu_eff", "dir": "asc"}]

    def search_metric_and_name():
        page = JobSearch(data.STAFF)
        page.name.value = "run-42"
        page.metric.value = "cpu_efficiency"
        page.metric_max.value = 10.0

    if args.compress:  # the baseline: the same queries before compressing, in this run
        print(f"{'before compressing host_data':64s} {'median':>8s} {'max':>8s}")
        for name, fn in (("  job page queries (job_series stored)", job_page_queries),
                         ("  job page queries (from host_data)",
                          lambda: job_page_queries(stored=False))):
            median, worst, _ = timed(fn, args.repeat)
            print(f"{name:64s} {median * 1000:7.0f}ms {worst * 1000:7.0f}ms")
        with psycopg.connect(url, autocommit=True) as conn:
            c0 = time.perf_counter()
            chunks = conn.execute("SELECT count(compress_chunk(c, if_not_compressed => true))"
                                  " FROM show_chunks('host_data') c").fetchone()[0]
            conn.execute("VACUUM ANALYZE host_data")
            print(f"compressed {chunks} host_data chunks in {time.perf_counter() - c0:.1f} s")
    job = {"start": T0 + timedelta(days=30),
           "end": T0 + timedelta(days=30) + STEP * (args.hours * 12 - 1)}
    others = pages_server_side(job)
    cases = [
        (f"job page, {args.hosts} nodes x {args.hours} h (staff)", job_page),
        (f"job page, {args.hosts} nodes x {args.hours} h (owner, scoped)",
         lambda: job_page(researcher)),
        ("job page, same job from host_data (no job_series rows yet)", running_job_page),
        ("  baseline: the same, every raw row (no host_agg)",
         lambda: running_job_page(aggregates=False)),
        ("  its queries alone (job_series stored)", job_page_queries),
        ("  its queries alone (from host_data)", lambda: job_page_queries(stored=False)),
        ("  baseline: its queries, every raw row",
         lambda: job_page_queries(stored=False, aggregates=False)),
        (f"search page, {args.jobs:,} jobs (staff, newest first)", search_page),
        ("search page (researcher, own jobs only)", lambda: search_page(researcher)),
        ("search: build + re-sort all jobs by CPU efficiency", search_sorted_by_efficiency),
        ("search: build + name contains + metric range", search_metric_and_name),
    ]
    if args.job_only:
        cases = [c for c in cases if not c[0].startswith("search")]
    else:
        cases += others
    print(f"{'page':64s} {'median':>8s} {'max':>8s} {'CPU':>8s}   load average (1 min)")
    for name, fn in cases:
        median, worst, cpu = timed(fn, args.repeat)
        print(f"{name:64s} {median * 1000:7.0f}ms {worst * 1000:7.0f}ms {cpu * 1000:7.0f}ms"
              f"   {os.getloadavg()[0]:.1f}")
    tab_clicks(job_view, args.repeat)
    models = len(job_page().models)
    print(f"the job page's first build: {models:,} Bokeh models "
          f"(the open tab's plots; the other tabs' on their first click)")
    if args.profile:
        profile("job page (job_series stored)", job_page)
        profile("job page (from host_data)", running_job_page)
    if args.browser:
        from benchmarks.dashboards_browser import browser_table

        browser_table(url, job, args.repeat, args.src, args.job_only)


def tab_clicks(job_view, repeat: int) -> None:
    """Server side of each job-page tab's first click: the page's document is built,
    then each closed tab is opened (``Tabs.active``), which builds its plots and their
    Bokeh models into the document; median and max wall time and median CPU time."""
    import panel as pn

    from dashboards import data

    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeat + 1):  # the first is the warm-up
        view = job_view(BIG_JOB, data.STAFF)
        view.server_doc(Document())
        (tabs,) = [t for part in view.main for t in part.select(pn.Tabs)]
        for i, name in enumerate(tabs._names):
            if i == tabs.active:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            tabs.active = i
            runs.setdefault(name, []).append((time.perf_counter() - t0,
                                              time.process_time() - c0))
    for name, times in runs.items():
        wall = [w for w, _ in times[1:]]
        cpu = statistics.median(c for _, c in times[1:])
        print(f"{'  job page tab ' + name + ', first click (server)':64s} "
              f"{statistics.median(wall) * 1000:7.0f}ms {max(wall) * 1000:7.0f}ms "
              f"{cpu * 1000:7.0f}ms")


def profile(name: str, fn) -> None:
    """cProfile's 25 most expensive functions (cumulative) of one call of ``fn``."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    print(f"\nprofile: {name}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def pages_server_side(job: dict[str, datetime]) -> list[tuple[str, object]]:
    """Server-side cases of the other pages (overview, host, user, account, compare,
    applications) over the same data: the big job's range and its first host."""
    from dashboards import data
    from dashboards.auth import Viewer
    from dashboards.pages.applications import applications_page
    from dashboards.pages.compare import compare_view
    from dashboards.pages.host import host_view
    from dashboards.pages.overview import overview
    from dashboards.pages.user import UserPage

    start, end = job["start"], job["end"]
    day = end.replace(hour=0, minute=0, second=0)
    user = Viewer("user0001", staff=False)

    def doc(view) -> None:
        view.server_doc(Document())

    return [
        ("overview, the big job's 48 h (staff)", lambda: doc(overview(data.STAFF, start, end))),
        ("host page, one node of the big job, 48 h",
         lambda: doc(host_view(data.STAFF, "b0000", start, end))),
        ("host page, its default (24 h to the last sample)",
         lambda: doc(host_view(data.STAFF, "b0000", None, None))),
        ("user page, user0001's last 30 days",
         lambda: doc(UserPage(data.STAFF, user="user0001", end=day).view())),
        ("user page, as user0001 (researcher)", lambda: doc(UserPage(user, end=day).view())),
        ("account page, proj-001, 30 days",
         lambda: doc(UserPage(data.STAFF, account="proj-001", end=day).view())),
        ("users page, everyone's 30 days (staff: top users, wasters)",
         lambda: doc(UserPage(data.STAFF, end=day).view())),
        ("compare, the big job and two others",
         lambda: doc(compare_view(data.STAFF, [BIG_JOB, "1000000", "1000001"]))),
        ("applications, 30 days", lambda: doc(applications_page(data.STAFF, None, None, end))),
    ]


if __name__ == "__main__":
    main()
