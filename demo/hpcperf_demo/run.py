"""``hpcperf demo``: the demo cluster end to end, on one machine.

1. database: ``HPCPERF_DATABASE_URL`` or the embedded PostgreSQL;
2. broker: ``HPCPERF_AMQP_URL`` if it answers, else a private RabbitMQ node
   (installed from Debian when missing); without one the samples are
   archived directly and the run says so;
3. the demo cluster's samples are published one message per sample and its
   accounting dumps dropped into the accounting directory;
4. Dagster (``dagster-webserver`` and ``dagster-daemon``) runs the sensors
   and the declarative automation, which drain the queue and materialise
   every asset; progress is printed until every finished job has its metrics;
5. the Panel dashboards are served and the URLs printed.

``--clusters 2``: the demo cluster twice, under two names (the second with
another seed: the same job ids and host names, another job mix), each with
its own queue, folders and Dagster code location (a clusters file and a
workspace written under ``HPCPERF_HOME``), one database and one dashboard
site with the cluster selector.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import yaml

from hpcperf_demo import rabbitmq
from hpcperf_demo.cli import demo_config, parse_time
from hpcperf_demo.cluster import REFERENCE_START, SHAPES, DemoConfig
from hpcperf_demo.generate import (
    accounting_files,
    expected_messages,
    iter_messages,
    peak_settings,
    script_files,
)
from hpcperfstats.clusters import ClusterConfig, cluster_config, clusters
from hpcperfstats.config import env as config_env
from hpcperfstats.config import is_set, settings
from hpcperfstats.db.connect import database_url
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ingest.drain import queue_depth, store_messages
from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.jobs.scripts import SUFFIX as SCRIPTS_SUFFIX

REPO = Path(__file__).resolve().parents[2]


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def broker_url(home: Path) -> str | None:
    """A reachable broker: the one ``HPCPERF_AMQP_URL`` names, or a private node.

    A broker merely found on the default port may be another checkout's
    demo or a system one: without ``HPCPERF_AMQP_URL`` the demo always runs
    its own node (which checks that a broker on its port is itself, and
    moves to a free port, printed and remembered, when it is not).
    """
    url = settings().amqp_url
    parsed = urlparse(url)
    if is_set("AMQP_URL"):
        if _port_open(parsed.hostname or "127.0.0.1", parsed.port or 5672):
            return url
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            say(f"broker {parsed.hostname} not reachable")
            return None
    try:
        rabbitmq.ensure_installed()
        base = home / "rabbitmq"
        if not rabbitmq.reachable_by_others(base):  # the broker runs as user 'rabbitmq'
            base = Path(tempfile.mkdtemp(prefix="hpcperf-demo-rabbit-"))
            base.chmod(0o755)
        node = rabbitmq.node(base, parsed.port or 5672, name="hpcperfdemo")
        say(f"starting a private RabbitMQ node under {base}")
        node.start()
        say(f"RabbitMQ node {node.nodename} on 127.0.0.1:{node.port}")
        return node.url
    except Exception as exc:  # no broker possible: still run, without the queue
        say(f"RabbitMQ unavailable ({exc}); archiving samples directly")
        return None


def publish(url: str, queue: str, cfg: DemoConfig) -> int:
    total = expected_messages(cfg)
    return publish_messages(
        url, queue, (m.text.encode() for m in iter_messages(cfg)),
        progress=lambda sent: say(f"published {sent}/{total} samples to queue {queue!r}"),
    )

#: the second cluster's name with ``--clusters 2`` (unless a clusters file names one)
SECOND_CLUSTER = "frontera"


def hours_to_load(instance, clusters: list[str] | None = None) -> int:
    """Archived hours (``raw_stats_archive`` partitions) without ``host_data`` yet, over
    ``clusters``' code locations (default: ``HPCPERF_CLUSTER``'s)."""
    from hpcperf_dagster.location import asset_key

    pending = 0
    for name in clusters or [None]:
        archived = instance.get_materialized_partitions(asset_key("raw_stats_archive", name))
        pending += len(archived - instance.get_materialized_partitions(
            asset_key("host_data", name)))
    return pending


def progress_line(conn: psycopg.Connection, url: str | None, queues: list[str],
                  instance, clusters: list[str] | None = None) -> tuple[str, bool]:
    depth = 0
    if url:
        try:
            depth = sum(queue_depth(url, queue) for queue in queues)
        except Exception:
            depth = -1
    pend_h = hours_to_load(instance, clusters)
    rows, hosts = conn.execute("SELECT count(*), count(DISTINCT host) FROM host_data").fetchone()
    finished, with_metrics = conn.execute(
        "SELECT count(*) FILTER (WHERE end_time IS NOT NULL), "
        "count(*) FILTER (WHERE end_time IS NOT NULL AND EXISTS ("
        "  SELECT 1 FROM job_metrics m WHERE (m.cluster, m.jobid) = (j.cluster, j.jobid))) "
        "FROM job_data j"
    ).fetchone()
    done = depth == 0 and pend_h == 0 and finished > 0 and finished == with_metrics
    line = (f"queue {depth} | archived hours not loaded {pend_h} | host_data {rows} rows / "
            f"{hosts} hosts | jobs with metrics {with_metrics}/{finished}")
    return line, done


#: The assets a loaded demo has materialised at least once (``--exit-when-done``).
DEMO_ASSETS = ("raw_stats_archive", "host_data", "slurm_jobs", "job_series",
               "job_series_rollup", "job_metrics",
               "job_coverage", "job_flags", "job_applications")


def dagster_settled(instance, clusters: list[str] | None = None) -> tuple[bool, str]:
    """Whether Dagster has nothing left to do for the demo: every asset of
    :data:`DEMO_ASSETS` materialised (in each of ``clusters``' locations) and no run
    queued or in progress (a run still writing job_flags must not be cut short by
    stopping the servers)."""
    from dagster import DagsterRunStatus, RunsFilter

    from hpcperf_dagster.location import asset_key

    busy = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    active = instance.get_runs_count(RunsFilter(statuses=busy))
    missing = [a for name in clusters or [None] for a in DEMO_ASSETS
               if instance.get_latest_materialization_event(asset_key(a, name)) is None]
    line = f"runs in progress {active} | assets not yet materialised {len(missing)}"
    return active == 0 and not missing, line


def start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def partition_start(demo: DemoConfig) -> str:
    """``HPCPERF_PARTITION_START`` for the demo's servers: the setting where one is set,
    else the UTC day of the demo's first sample, so Dagster's partitions begin at
    the data and a loaded demo shows its partitions filled, not "0%" of a year."""
    if is_set("PARTITION_START"):
        return str(config_env("PARTITION_START"))
    return demo.start.astimezone(UTC).strftime("%Y-%m-%d")


def demo_clusters(count: int, home: Path) -> list[ClusterConfig]:
    """The clusters the demo loads: ``HPCPERF_CLUSTER`` alone, or with ``count=2`` the
    first two the clusters file declares, or without a file ``HPCPERF_CLUSTER`` and
    :data:`SECOND_CLUSTER` in ``home/clusters.yaml`` (set as ``HPCPERF_CLUSTERS_FILE``
    here and for the servers)."""
    if count == 1:
        return [cluster_config()]
    if not is_set("CLUSTERS_FILE"):
        first = settings().cluster
        second = SECOND_CLUSTER if first != SECOND_CLUSTER else f"{SECOND_CLUSTER}2"
        path = home / "clusters.yaml"
        path.write_text(f"# written by hpcperf demo --clusters 2\nclusters:\n"
                        f"  {first}: {{}}\n  {second}: {{}}\n")
        os.environ["HPCPERF_CLUSTERS_FILE"] = str(path)
    found = list(clusters().values())
    if len(found) < count:
        raise SystemExit(f"hpcperf demo: --clusters {count}, but HPCPERF_CLUSTERS_FILE "
                         f"declares {len(found)}")
    return found[:count]


def demo_workspace(dagster_home: Path) -> str:
    """The workspace the demo's Dagster loads: the repository's one location, or with a
    clusters file one location per cluster (written into ``dagster_home``)."""
    if not is_set("CLUSTERS_FILE"):
        return str(REPO / "workspace.yaml")
    from hpcperf_dagster.locations import workspace

    path = dagster_home / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace(working_directory=str(REPO)), sort_keys=False))
    return str(path)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the demo through its ``finally``, which stops the
    servers it started (each in its own session, so no signal to the demo reaches
    them). Without this a demo started from a background job, which inherits SIGINT
    ignored, or stopped with SIGTERM, left its Dagster daemon, webserver and
    dashboard server running."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)


def main(argv: list[str]) -> int:
    stop_on_signals()
    parser = argparse.ArgumentParser(prog="hpcperf demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--hours", type=int, default=24)
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--end", type=parse_time, default=None,
                      help="where the demo's timeline ends: 'now' (default; nodes look live) "
                           "or an ISO time; the jobs and values are the same for any end")
    when.add_argument("--start", type=parse_time, default=None,
                      help="anchor the timeline's start instead (the tests: "
                           f"{REFERENCE_START.isoformat()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=SHAPES, default="demo",
                        help="demo: small nodes; fixture: nodes shaped like the Stampede3 fixture")
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--web-port", type=int, default=int(config_env("WEB_PORT")))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="stop the servers once every asset is materialised")
    parser.add_argument("--clusters", type=int, choices=(1, 2), default=1,
                        help="2: the demo cluster twice under two names (same job ids and "
                        "hosts, another seed), each its own Dagster code location")
    args = parser.parse_args(argv)

    cfg = settings()
    home = cfg.home
    home.mkdir(parents=True, exist_ok=True)
    if args.start is None and args.end is None:
        args.end = datetime.now(UTC)
    demo = demo_config(args, cluster=cfg.cluster)
    # before anything imports the partitions (they read the setting once)
    os.environ["HPCPERF_PARTITION_START"] = partition_start(demo)
    clusters = demo_clusters(args.clusters, home)
    demos = {c.name: demo_config(args, cluster=c.name, seed=args.seed + i)
             for i, c in enumerate(clusters)}
    say(f"data directory {home}")
    url = database_url(cfg)
    with psycopg.connect(url) as conn:
        info = ensure_schema(conn)
    say(f"database {url} (timescaledb: {info['timescale']})")

    interval = config_env("SENSOR_INTERVAL") if is_set("SENSOR_INTERVAL") else "5"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    workspace = demo_workspace(dagster_home)
    env = dict(os.environ, HPCPERF_HOME=str(home), HPCPERF_DATABASE_URL=url,
               HPCPERF_SENSOR_INTERVAL=interval, HPCPERF_AUTOMATION_INTERVAL=interval,
               DAGSTER_HOME=str(dagster_home))
    for name, value in peak_settings(demo).items():  # the roofline's roof, unless given
        env[name] = env.get(name) or value
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(dagster_home))
    amqp = broker_url(home)
    if amqp:
        env["HPCPERF_AMQP_URL"] = amqp
        os.environ["HPCPERF_AMQP_URL"] = amqp
    for cluster in clusters:
        one = demos[cluster.name]
        if amqp:
            say(f"demo cluster {cluster.name}: {one.nodes} nodes + {one.gpu_nodes} GPU, "
                f"{one.hours} h at {one.interval} s from {one.start.isoformat()} -> RabbitMQ")
            publish(amqp, cluster.queue, one)
        else:
            from hpcperf_dagster.lineage import report_archived

            result = store_messages((m.text.encode() for m in iter_messages(one)),
                                    cluster.archive_dir, cluster.quarantine_dir)
            report_archived(instance, result.hours, "hpcperf demo (no broker)", cluster.name)
            say(f"archived {result.samples} samples of {cluster.name} directly (no broker)")
        cluster.accounting_dir.mkdir(parents=True, exist_ok=True)
        for day, text in script_files(one).items():  # before the dumps, as the dump does
            (cluster.accounting_dir / f"{day}{SCRIPTS_SUFFIX}").write_text(text)
        for day, text in accounting_files(one).items():
            (cluster.accounting_dir / f"{day}.txt").write_text(text)
        say(f"accounting dumps of {cluster.name} written to {cluster.accounting_dir}")

    bin_dir = Path(sys.executable).parent
    procs = [
        start([str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
              home / "logs" / "dagster.log", env),
        start([str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
               "-p", str(args.dagster_port)], home / "logs" / "dagster.log", env),
        start([sys.executable, "-m", "dashboards.serve"], home / "logs" / "web.log",
              dict(env, HPCPERF_WEB_PORT=str(args.web_port))),
    ]
    say(f"Dagster UI starting at http://127.0.0.1:{args.dagster_port} "
        f"(log {home / 'logs' / 'dagster.log'})")
    try:
        deadline = time.monotonic() + args.timeout
        last = ""
        from dagster import DagsterInstance

        os.environ["DAGSTER_HOME"] = str(dagster_home)  # the instance the servers use
        with psycopg.connect(url, autocommit=True) as conn, DagsterInstance.get() as instance:
            while True:
                names = [c.name for c in clusters]
                line, done = progress_line(conn, amqp, [c.queue for c in clusters],
                                           instance, names)
                settled, runs = dagster_settled(instance, names)
                line, done = f"{line} | {runs}", done and settled
                if line != last:
                    say(line)
                    last = line
                if done:
                    break
                if any(p.poll() is not None for p in procs):
                    say("a server exited; see the logs under " + str(home / "logs"))
                    return 1
                if time.monotonic() > deadline:
                    say(f"not finished after {args.timeout:.0f} s")
                    return 1
                time.sleep(3)
            jobid = conn.execute(
                "SELECT j.jobid FROM job_data j JOIN job_metrics m USING (cluster, jobid) "
                "WHERE m.metric = 'cpu_efficiency' AND m.value IS NOT NULL "
                "AND j.cluster = %s ORDER BY j.nnodes DESC, j.jobid LIMIT 1",
                (clusters[0].name,)).fetchone()
        say("every asset is materialised")
        say(f"Dagster UI:  http://127.0.0.1:{args.dagster_port}")
        say(f"Dashboards:  http://127.0.0.1:{args.web_port}/jobs")
        for cluster in clusters[1:]:
            say(f"             http://127.0.0.1:{args.web_port}/jobs?cluster={cluster.name}")
        if jobid:
            say(f"A job:       http://127.0.0.1:{args.web_port}/job?jobid={jobid[0]}")
        if args.exit_when_done:
            return 0
        say("serving; press Ctrl-C to stop")
        while all(p.poll() is None for p in procs):
            time.sleep(2)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)
