"""The Dagster UI with a year of runs: page queries timed against run history size.

``python -m benchmarks.dagster_history [--sizes 0,100000,300000] [--runs-per-day 3000]
[--repeat 3]``

At 2,000-4,000 runs a day (a drain every sensor tick or two, host_data hours,
job days) a year is about a million runs in Dagster's PostgreSQL storage.
This benchmark builds such a history and times the GraphQL queries behind the
pages a person opens, on ``dagster-webserver`` serving the real code location
(``hpcperf_dagster.definitions``) with the production instance file
(``deploy/dagster.yaml``, PostgreSQL storage), all on a private embedded
PostgreSQL:

- the runs list (``runsFeedOrError``, 25 newest, as the Runs page asks) and
  one job's runs (``runsOrError`` filtered by job, as the job page asks);
- host_data's asset page: its partition statuses (8,760 hourly partitions a
  year) and latest materialisation;
- the backfills page (``partitionBackfillsOrError``, 25 newest);
- the overview: every asset's latest materialisation and run.

How the history is made. Templates through Dagster's public APIs: one run of
a stand-in ``drain_job`` and one of a stand-in ``host_data_job`` (same job
names and asset keys and partitions as the real ones, no-op bodies) executed
in-process on the instance (their real rows: ``runs``, ``run_tags``,
``event_logs`` with RUN_START, STEP_*, ASSET_MATERIALIZATION, RUN_SUCCESS),
plus the drain's runless ``raw_stats_archive`` report
(``report_runless_asset_event``, as ``hpcperf_dagster.lineage`` does). The
history is then a bulk copy of those rows in SQL (``INSERT ... SELECT``):
each copy gets a new run id (replaced in the serialised run and events too),
times moved back day by day over the year, and, for host_data runs, its own
hour (partition column, tags and serialised events). Per day: 24 host_data
runs (one per hour, host_data and host_aggregates materialised), 24 runless
archive reports, the rest drains. Dagster's own per-event secondary tables
(``asset_event_tags``) are not copied, and the asset status cache is
dropped after each growth: the first asset-page load computes the statuses
from ``event_logs`` as Dagster does after a cache miss (what a person meets
after an upgrade or a wipe), which is what is timed first; later loads (from
the cache) are reported beside it.

Each size is timed after the history grew to it, ``--repeat`` times per
query (first, then the median of the rest), with the empty instance as the
baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from hpcperfstats.db import embedded
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: the newest day of the simulated year (the history runs back from it)
END = datetime(2026, 11, 20, tzinfo=UTC)
HOUR_FORMAT = "%Y-%m-%d-%H:00"

QUERIES = {
    "runs list (25 newest)": """{ runsFeedOrError(limit: 25, view: ROOTS) { __typename
      ... on RunsFeedConnection { results { id runStatus creationTime startTime endTime
      tags { key value } } hasMore } } }""",
    "host_data_job's runs (job page, 25 newest)": """{ runsOrError(limit: 25,
      filter: {pipelineName: "host_data_job"}) { __typename ... on Runs { results { runId
      status startTime endTime } } } }""",
    "host_data asset page: partition statuses": """{ assetNodeOrError(assetKey:
      {path: ["host_data"]}) { ... on AssetNode { partitionStats { numMaterialized
      numFailed numPartitions } assetPartitionStatuses { __typename
      ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }""",
    "host_data asset page: latest events": """{ assetOrError(assetKey: {path: ["host_data"]})
      { ... on Asset { assetMaterializations(limit: 25) { runId partition timestamp } } } }""",
    "backfills page (25 newest)": """{ partitionBackfillsOrError(limit: 25) { __typename
      ... on PartitionBackfills { results { id status numPartitions timestamp } } } }""",
    "overview: every asset's latest run": """{ assetNodes { assetKey { path }
      assetMaterializations(limit: 1) { runId timestamp } } }""",
}

#: the stand-in jobs (run in a child with the instance's environment)
TEMPLATES = """
import sys
from dagster import (AssetKey, AssetMaterialization, DagsterInstance, Definitions, asset,
                     define_asset_job, job, op)
from hpcperf_dagster.partitions import hourly

hour = sys.argv[1]

@asset(key="host_data", partitions_def=hourly)
def host_data():
    return None

@asset(key="host_aggregates", partitions_def=hourly, deps=[host_data])
def host_aggregates():
    return None

@op
def drain_queue_op():
    return None

@job(tags={"hpcperf/drain": "true"})
def drain_job():
    drain_queue_op()

host_data_job = define_asset_job("host_data_job", selection=["host_data", "host_aggregates"])
defs = Definitions(assets=[host_data, host_aggregates], jobs=[drain_job, host_data_job])
with DagsterInstance.get() as instance:
    drain = defs.resolve_job_def("drain_job").execute_in_process(instance=instance)
    hd = defs.resolve_job_def("host_data_job").execute_in_process(instance=instance,
                                                                 partition_key=hour)
    instance.report_runless_asset_event(AssetMaterialization(
        AssetKey("raw_stats_archive"), partition=hour, metadata={"source": "drain"}))
    print(drain.run_id, hd.run_id)
"""


def say(msg: str) -> None:
    print(f"[history {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def graphql(base: str, query: str) -> tuple[float, dict]:
    """Seconds for one query, and its data (the answer must hold no error)."""
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=1800) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:  # an invalid query: say which and why
        raise RuntimeError(f"{query[:60]}: {exc.read()[:2000]!r}") from None
    seconds = time.perf_counter() - t0
    if answer.get("errors"):
        raise RuntimeError(f"{query[:60]}: {answer['errors'][0].get('message')}")
    return seconds, answer["data"]


def time_pages(base: str, repeat: int) -> dict[str, tuple[float, float]]:
    """Per query: (first, median of the rest) seconds; what the pages showed is
    printed, so an answer that found nothing does not pass for a fast one."""
    out = {}
    for name, query in QUERIES.items():
        answers = [graphql(base, query) for _ in range(repeat)]
        times = [t for t, _ in answers]
        out[name] = (times[0], statistics.median(times[1:]) if len(times) > 1 else times[0])
        data = answers[-1][1]
        if "assetNodeOrError" in data:
            stats = data["assetNodeOrError"]["partitionStats"]
            ranges = data["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
            say(f"  host_data: {stats['numMaterialized']:,} of {stats['numPartitions']:,} "
                f"hourly partitions materialised, {len(ranges)} ranges")
        elif "runsFeedOrError" in data:
            say(f"  runs list: {len(data['runsFeedOrError']['results'])} rows, "
                f"more: {data['runsFeedOrError']['hasMore']}")
    return out


def grow(conn: psycopg.Connection, templates: tuple[str, str], hour: str, start: int,
         count: int, per_day: int) -> None:
    """Copy the template runs into history runs ``start`` .. ``start + count - 1``
    (run ``i``: day ``i // per_day`` before ``END``; its first 24 of a day are
    host_data hours, the rest drains)."""
    drain_id, hd_id = templates
    conn.execute("DROP TABLE IF EXISTS sim")
    conn.execute("""
        CREATE TEMP TABLE sim AS
        SELECT i, md5('hpcperf-history-' || i)::uuid::text AS run_id,
               CASE WHEN i %% %(per_day)s < 24 THEN %(hd)s ELSE %(drain)s END AS template,
               -- seconds back from the template's time: whole days, then the hour of the day
               (i / %(per_day)s) * 86400.0 + CASE WHEN i %% %(per_day)s < 24
                   THEN (i %% %(per_day)s) * 3600.0
                   ELSE (i %% %(per_day)s) * 86400.0 / %(per_day)s END AS back,
               to_char(%(end)s::timestamp - (i / %(per_day)s) * interval '1 day'
                       - (i %% %(per_day)s %% 24) * interval '1 hour',
                       'YYYY-MM-DD-HH24:00') AS hour
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i""",
                 {"per_day": per_day, "hd": hd_id, "drain": drain_id,
                  "end": END.replace(tzinfo=None) + timedelta(hours=23),
                  "lo": start, "hi": start + count - 1})
    # the template's own strings replaced: run id everywhere, its hour for host_data copies
    conn.execute("""
        INSERT INTO runs (run_id, snapshot_id, pipeline_name, mode, status, run_body, partition,
                          partition_set, create_timestamp, update_timestamp, start_time,
                          end_time, backfill_id)
        SELECT s.run_id, r.snapshot_id, r.pipeline_name, r.mode, r.status,
               replace(replace(r.run_body, r.run_id, s.run_id), %(hour)s, s.hour),
               CASE WHEN r.partition IS NULL THEN NULL ELSE s.hour END, r.partition_set,
               r.create_timestamp - s.back * interval '1 second',
               r.update_timestamp - s.back * interval '1 second',
               r.start_time - s.back, r.end_time - s.back, r.backfill_id
        FROM sim s JOIN runs r ON r.run_id = s.template""", {"hour": hour})
    conn.execute("""
        INSERT INTO run_tags (run_id, key, value)
        SELECT s.run_id, t.key, replace(t.value, %(hour)s, s.hour)
        FROM sim s JOIN run_tags t ON t.run_id = s.template""", {"hour": hour})
    conn.execute("""
        INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key,
                                asset_key, partition)
        SELECT s.run_id, replace(replace(e.event, e.run_id, s.run_id), %(hour)s, s.hour),
               e.dagster_event_type, e.timestamp - s.back * interval '1 second', e.step_key,
               e.asset_key, CASE WHEN e.partition IS NULL THEN NULL ELSE s.hour END
        FROM sim s JOIN event_logs e ON e.run_id = s.template
        ORDER BY s.i DESC, e.id""", {"hour": hour})
    # the drain's runless report of each hour (one per host_data hour)
    conn.execute("""
        INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key,
                                asset_key, partition)
        SELECT e.run_id, replace(e.event, %(hour)s, s.hour), e.dagster_event_type,
               e.timestamp - s.back * interval '1 second', e.step_key, e.asset_key, s.hour
        FROM sim s JOIN event_logs e ON e.run_id = '' AND e.partition = %(hour)s
        WHERE s.template = %(hd)s""", {"hour": hour, "hd": hd_id})
    # the asset status cache does not know of rows added behind Dagster's back: drop it,
    # so the next asset page computes partition statuses from event_logs (a cache miss)
    conn.execute("UPDATE asset_keys SET cached_status_data = NULL")
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,100000,300000",
                        help="run-history sizes to time the pages at, ascending")
    parser.add_argument("--runs-per-day", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="hpcperf-history-"))
    root.chmod(0o755)
    web = None
    try:
        with embedded.running(root / "pg" / "data") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE dagster")
            pg = urlsplit(url)
            home = root / "dagster_home"
            home.mkdir()
            shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
            days = max(sizes) // args.runs_per_day + 2
            env = dict(
                os.environ, DAGSTER_HOME=str(home),
                DAGSTER_PG_HOST=pg.hostname or "127.0.0.1", DAGSTER_PG_PORT=str(pg.port),
                DAGSTER_PG_USER=pg.username or "", DAGSTER_PG_PASSWORD=pg.password or "",
                DAGSTER_PG_DB="dagster", DAGSTER_DATA_DIR=str(root / "dagster_data"),
                DAGSTER_MAX_CONCURRENT_RUNS="4", HPCPERF_HOME=str(root / "hpcperf"),
                HPCPERF_DATABASE_URL=url, HPCPERF_CLUSTER="history",
                HPCPERF_PARTITION_START=(END - timedelta(days=days)).date().isoformat())
            hour = END.strftime(HOUR_FORMAT)
            out = subprocess.run([sys.executable, "-c", TEMPLATES, hour], env=env, cwd=REPO,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            templates = tuple(out.stdout.split()[-2:])
            dsn = url.rsplit("/", 1)[0] + "/dagster"
            port = free_port()
            log = (root / "webserver.log").open("w")
            web = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p",
                                    str(port), "-m", "hpcperf_dagster.definitions"],
                                   env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600
            while True:
                try:
                    graphql(base, "{ version }")  # the webserver is up
                    break
                except OSError:
                    if time.monotonic() > deadline or web.poll() is not None:
                        raise SystemExit((root / "webserver.log").read_text()[-3000:]) from None
                    time.sleep(2)
            results = []
            have = 0
            with psycopg.connect(dsn) as conn:
                for size in sizes:
                    if size > have:
                        t0 = time.perf_counter()
                        step = 100_000
                        for lo in range(have, size, step):
                            grow(conn, templates, hour, lo + 1, min(step, size - lo),
                                 args.runs_per_day)
                        have = size
                        say(f"history grown to {size:,} runs in {time.perf_counter() - t0:.0f} s")
                    runs, events = conn.execute(
                        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM event_logs)"
                    ).fetchone()
                    mb = conn.execute("SELECT pg_database_size('dagster')").fetchone()[0] / 1e6
                    say(f"{runs:,} runs, {events:,} events, {mb:.0f} MB; timing the pages")
                    results.append((runs, events, mb, time_pages(base, args.repeat)))
        print(f"\n## Dagster UI page queries against run history "
              f"({args.runs_per_day:,} runs a day; load average {os.getloadavg()[0]:.1f})")
        print("| page (GraphQL) | " + " | ".join(f"{r:,} runs" for r, *_ in results) + " |")
        print("| --- |" + " --- |" * len(results))
        for name in QUERIES:
            cells = [f"{p[name][0]:.2f} s first, {p[name][1]:.2f} s then" for *_, p in results]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print("| events; Dagster database | " + " | ".join(
            f"{e:,}; {mb:,.0f} MB" for _, e, mb, _ in results) + " |")
    finally:
        if web is not None:
            web.terminate()
            try:
                web.wait(30)
            except subprocess.TimeoutExpired:
                web.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
