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

def hours_to_load(instance) -> int:
    """Archived hours (``raw_stats_archive`` partitions) without ``host_data`` yet."""
    from dagster import AssetKey

    archived = instance.get_materialized_partitions(AssetKey("raw_stats_archive"))
    return len(archived - instance.get_materialized_partitions(AssetKey("host_data")))


def progress_line(conn: psycopg.Connection, url: str | None, queue: str,
                  instance) -> tuple[str, bool]:
    depth = 0
    if url:
        try:
            depth = queue_depth(url, queue)
        except Exception:
            depth = -1
    pend_h = hours_to_load(instance)
    rows, hosts = conn.execute("SELECT count(*), count(DISTINCT host) FROM host_data").fetchone()
    finished, with_metrics = conn.execute(
        "SELECT count(*) FILTER (WHERE end_time IS NOT NULL), "
        "count(*) FILTER (WHERE end_time IS NOT NULL AND EXISTS ("
        "  SELECT 1 FROM job_metrics m WHERE m.jobid = j.jobid)) FROM job_data j"
    ).fetchone()
    done = depth == 0 and pend_h == 0 and finished > 0 and finished == with_metrics
    line = (f"queue {depth} | archived hours not loaded {pend_h} | host_data {rows} rows / "
            f"{hosts} hosts | jobs with metrics {with_metrics}/{finished}")
    return line, done


#: The assets a loaded demo has materialised at least once (``--exit-when-done``).
DEMO_ASSETS = ("raw_stats_archive", "host_data", "slurm_jobs", "job_series",
               "job_series_rollup", "job_metrics",
               "job_coverage", "job_flags", "job_applications")


def dagster_settled(instance) -> tuple[bool, str]:
    """Whether Dagster has nothing left to do for the demo: every asset of
    :data:`DEMO_ASSETS` materialised and no run queued or in progress (a run
    still writing job_flags must not be cut short by stopping the servers)."""
    from dagster import AssetKey, DagsterRunStatus, RunsFilter

    busy = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    active = instance.get_runs_count(RunsFilter(statuses=busy))
    missing = [a for a in DEMO_ASSETS
               if instance.get_latest_materialization_event(AssetKey(a)) is None]
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


def main(argv: list[str]) -> int:
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
    args = parser.parse_args(argv)

    cfg = settings()
    home = cfg.home
    home.mkdir(parents=True, exist_ok=True)
    if args.start is None and args.end is None:
        args.end = datetime.now(UTC)
    demo = demo_config(args, cluster=cfg.cluster)
    # before anything imports the partitions (they read the setting once)
    os.environ["HPCPERF_PARTITION_START"] = partition_start(demo)
    say(f"data directory {home}")
    url = database_url(cfg)
    with psycopg.connect(url) as conn:
        info = ensure_schema(conn)
    say(f"database {url} (timescaledb: {info['timescale']})")

    interval = config_env("SENSOR_INTERVAL") if is_set("SENSOR_INTERVAL") else "5"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
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
        say(f"demo cluster: {demo.nodes} nodes + {demo.gpu_nodes} GPU, {demo.hours} h at "
            f"{demo.interval} s from {demo.start.isoformat()} -> RabbitMQ")
        publish(amqp, cfg.queue, demo)
    else:
        from hpcperf_dagster.lineage import report_archived

        result = store_messages((m.text.encode() for m in iter_messages(demo)),
                                cfg.archive_dir, cfg.quarantine_dir)
        report_archived(instance, result.hours, "hpcperf demo (no broker)")
        say(f"archived {result.samples} samples directly (no broker)")
    cfg.accounting_dir.mkdir(parents=True, exist_ok=True)
    for day, text in script_files(demo).items():  # before the dumps, as the dump does
        (cfg.accounting_dir / f"{day}{SCRIPTS_SUFFIX}").write_text(text)
    for day, text in accounting_files(demo).items():
        (cfg.accounting_dir / f"{day}.txt").write_text(text)
    say(f"accounting dumps written to {cfg.accounting_dir}")

    bin_dir = Path(sys.executable).parent
    workspace = str(REPO / "workspace.yaml")
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
                line, done = progress_line(conn, amqp, cfg.queue, instance)
                settled, runs = dagster_settled(instance)
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
                "SELECT j.jobid FROM job_data j JOIN job_metrics m USING (jobid) "
                "WHERE m.metric = 'cpu_efficiency' AND m.value IS NOT NULL "
                "ORDER BY j.nnodes DESC, j.jobid LIMIT 1").fetchone()
        say("every asset is materialised")
        say(f"Dagster UI:  http://127.0.0.1:{args.dagster_port}")
        say(f"Dashboards:  http://127.0.0.1:{args.web_port}/jobs")
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
