"""Soak: a cluster's samples through RabbitMQ and the real Dagster daemon into host_data.

``python -m benchmarks.soak --nodes 1000 --minutes 10 [--shape demo|fixture]``

What a site planning N nodes would run, on one machine: a private embedded
PostgreSQL (TimescaleDB where installed) holding both the hpcperf database and
Dagster's storage, the production instance file ``deploy/dagster.yaml``
(PostgreSQL run, event-log and schedule storage, queued run coordinator,
default run launcher) under ``dagster-daemon run``, and a private RabbitMQ
node. The demo cluster's ``--minutes`` of samples (one message per node per
``--interval``, 300 s as the demo) are published as fast as the broker
confirms them, then the sensors drain the queue into the archive and launch
the host_data runs, whatever the lineage decides; this benchmark only watches
from outside:

- publish rate; time until the queue is empty; time until every published
  (host, time) sample is in host_data and no run is queued or running;
- headroom: the minutes of cluster time divided by the time from the first
  publish until everything was loaded;
- peak RSS per process, ours (daemon, code servers, run workers, this
  publisher) apart from PostgreSQL's and RabbitMQ's, sampled every 0.5 s;
- host_data rows written (``pg_stat_user_tables.n_tup_ins``, summed over the
  hypertable's chunks) and deleted against rows kept;
- database bytes (hpcperf, Dagster) and archive bytes;
- Dagster runs from the instance's run records: count per job and status,
  and each run's launch overhead (RUN_STARTING to its first STEP_START);
- rows/s end to end against a bare COPY of the same rows into a scratch
  copy of host_data, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from hpcperf_demo import rabbitmq
from hpcperf_demo.cluster import SHAPES, DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.db import embedded
from hpcperfstats.db.load import HOST_DATA_COLUMNS, copy_frame
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ingest.drain import queue_depth
from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def say(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- memory


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids[ppid].append(int(entry.name))
    return kids


def _descendants(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def role(cmd: str) -> str:
    """What one of our processes is, from its command line."""
    if "dagster-daemon" in cmd:
        return "dagster-daemon"
    if "execute_run" in cmd or "execute_step" in cmd:
        return "run worker"
    if "multiprocessing" in cmd:  # a step of a run (Dagster's multiprocess executor)
        return "step worker"
    if "grpc" in cmd or "code-server" in cmd:
        return "code server"
    if "postgres" in cmd:
        return "PostgreSQL"
    if "beam.smp" in cmd:
        return "RabbitMQ"
    if "epmd" in cmd or "erl_child_setup" in cmd or "inet_gethost" in cmd:
        return "RabbitMQ"
    if "compute_logs" in cmd:
        return "dagster log tailer"
    if "dagster" in cmd:
        return "dagster (other)"
    return "other"


@dataclass
class Peaks:
    """Peak RSS (KiB) per role: of any one process, and of the role's processes together."""

    one: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    together: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    processes: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    example: dict[str, str] = field(default_factory=dict)  # a command line of each role


class MemoryWatch:
    """Samples the RSS of the process trees we started (daemon, PostgreSQL,
    RabbitMQ) and of this process, every ``every`` seconds, in a thread."""

    def __init__(self, roots: dict[str, int], every: float = 0.5) -> None:
        self.roots, self.every = roots, every
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        kids = _children()
        now: dict[str, int] = defaultdict(int)
        for root_name, root in self.roots.items():
            # this process: itself only (the servers it started are watched as their own)
            tree = [root] if root == os.getpid() else _descendants(root, kids)
            for pid in tree:
                rss = _rss_kb(pid)
                if not rss:
                    continue
                cmd = _cmdline(pid)
                name = "publisher (this process)" if pid == os.getpid() else role(cmd)
                if name == "other":
                    name = root_name
                self.peaks.example.setdefault(name, cmd[:100])
                now[name] += rss
                self.peaks.one[name] = max(self.peaks.one[name], rss)
                self.peaks.processes[name].add(pid)
        for name, rss in now.items():
            self.peaks.together[name] = max(self.peaks.together[name], rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)


# ---------------------------------------------------------------- database


def host_data_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """host_data and, under TimescaleDB, its chunks: (schema, table)."""
    tables = [("public", "host_data")]
    with contextlib.suppress(psycopg.Error):
        tables += conn.execute(
            "SELECT chunk_schema, chunk_name FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'host_data'").fetchall()
    return tables


def written_deleted(conn: psycopg.Connection) -> tuple[int, int]:
    """Rows inserted and deleted in host_data so far (statistics counters)."""
    tables = host_data_tables(conn)
    ins = dele = 0
    for schema, table in tables:
        row = conn.execute("SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables "
                           "WHERE schemaname = %s AND relname = %s", (schema, table)).fetchone()
        if row:
            ins, dele = ins + row[0], dele + row[1]
    return ins, dele


def samples_loaded(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM (SELECT DISTINCT host, time FROM host_data) s"
                        ).fetchone()[0]


def bare_copy_rows_per_s(conn: psycopg.Connection) -> tuple[int, float]:
    """COPY host_data's rows into an empty scratch copy of it: (rows, rows/s)."""
    import polars as pl

    frame = pl.read_database(f"SELECT {', '.join(HOST_DATA_COLUMNS)} FROM host_data", conn,
                             infer_schema_length=None)
    conn.execute("DROP TABLE IF EXISTS soak_bare_copy")
    conn.execute("CREATE TABLE soak_bare_copy (LIKE host_data INCLUDING ALL)")
    conn.commit()
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        n = copy_frame(cur, "soak_bare_copy", frame, HOST_DATA_COLUMNS)
    seconds = time.perf_counter() - t0
    conn.execute("DROP TABLE soak_bare_copy")
    conn.commit()
    return n, n / seconds


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- Dagster


def run_summary(dagster_home: Path) -> tuple[Counter, list[float], int]:
    """(runs per (job, status), launch overheads in s, runs not finished) from the instance."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    with DagsterInstance.get() as instance:
        records = instance.get_run_records()
        by = Counter((r.dagster_run.job_name, r.dagster_run.status.value) for r in records)
        overheads = []
        for r in records:
            starting = step = None
            for entry in instance.all_logs(r.dagster_run.run_id, of_type={
                    DagsterEventType.RUN_STARTING, DagsterEventType.STEP_START}):
                kind = entry.dagster_event.event_type
                if kind == DagsterEventType.RUN_STARTING and starting is None:
                    starting = entry.timestamp
                elif kind == DagsterEventType.STEP_START and step is None:
                    step = entry.timestamp
            if starting is not None and step is not None:
                overheads.append(step - starting)
        unfinished = sum(r.dagster_run.status in (
            DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED) for r in records)
    return by, overheads, unfinished


def _stop(proc: subprocess.Popen) -> None:
    """End the process group we started (daemon, its code server and run workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def daemon(env: dict, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        _stop(proc)


# ---------------------------------------------------------------- the soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--shape", choices=SHAPES, default="demo")
    parser.add_argument("--interval", type=int, default=300, help="seconds between samples")
    parser.add_argument("--sensor-interval", type=int, default=30,
                        help="HPCPERF_SENSOR_INTERVAL (production default 30)")
    parser.add_argument("--max-concurrent-runs", type=int, default=4,
                        help="DAGSTER_MAX_CONCURRENT_RUNS (the image's default 4)")
    parser.add_argument("--publishers", type=int, default=16,
                        help="connections publishing at once (nodes publish independently; "
                        "one connection waiting for each confirm is the bottleneck otherwise)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work under this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    # stop cleanly on SIGTERM (and SIGINT, which a shell's background job ignores):
    # the finally blocks end the daemon, PostgreSQL and RabbitMQ
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    say(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    cfg = DemoConfig.of_shape(args.shape, nodes=args.nodes, start=start,
                              hours=args.minutes / 60, interval=args.interval)
    if cfg.samples < 1:
        raise SystemExit("--minutes shorter than one --interval: no samples")
    root = args.keep or Path(tempfile.mkdtemp(prefix="hpcperf-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the broker and PostgreSQL may run as their own users
    try:
        return soak(args, cfg, root)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def soak(args: argparse.Namespace, cfg: DemoConfig, root: Path) -> int:
    t0 = time.perf_counter()
    messages = list(iter_messages(cfg))
    bodies = [m.text.encode() for m in messages]
    hosts = [m.host for m in messages]
    del messages
    mb = sum(map(len, bodies)) / 1e6
    say(f"{cfg.nodes} {cfg.shape} nodes x {args.minutes:g} min at {cfg.interval} s: "
        f"{len(bodies)} messages, {mb:.1f} MB ({mb * 1e3 / len(bodies):.1f} KB each), "
        f"generated in {time.perf_counter() - t0:.1f} s")
    rabbitmq.ensure_installed()
    node = rabbitmq.node(root / "rabbitmq", free_port(), name=f"soak{uuid.uuid4().hex[:6]}")
    node.start()
    say(f"RabbitMQ {node.nodename} on {node.port}")
    queue = f"soak{uuid.uuid4().hex[:6]}"
    home = root / "hpcperf"
    dagster_home = root / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    try:
        with embedded.running(root / "pg" / "data") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE dagster")
                ensure_schema(conn)
            pg = urlsplit(url)
            env = dict(
                os.environ, DAGSTER_HOME=str(dagster_home),
                DAGSTER_PG_HOST=pg.hostname or "127.0.0.1", DAGSTER_PG_PORT=str(pg.port),
                DAGSTER_PG_USER=pg.username or "", DAGSTER_PG_PASSWORD=pg.password or "",
                DAGSTER_PG_DB="dagster", DAGSTER_DATA_DIR=str(root / "dagster_data"),
                DAGSTER_MAX_CONCURRENT_RUNS=str(args.max_concurrent_runs),
                HPCPERF_HOME=str(home), HPCPERF_DATABASE_URL=url, HPCPERF_AMQP_URL=node.url,
                HPCPERF_CLUSTER=queue, HPCPERF_SENSOR_INTERVAL=str(args.sensor_interval),
                HPCPERF_PARTITION_START=(cfg.start - timedelta(days=1)).date().isoformat(),
            )
            os.environ.update({k: env[k] for k in (
                "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
                "DAGSTER_PG_DB", "DAGSTER_DATA_DIR", "DAGSTER_MAX_CONCURRENT_RUNS")})
            pg_pid = int((root / "pg" / "data" / "postmaster.pid").read_text().split()[0])
            beam = int((node.base / "rabbit.pid").read_text().split()[0]) if (
                node.base / "rabbit.pid").exists() else None
            roots = {"PostgreSQL": pg_pid, "publisher (this process)": os.getpid()}
            if beam:
                roots["RabbitMQ"] = beam
            with daemon(env, root / "daemon.log") as proc:
                roots["dagster-daemon"] = proc.pid
                with MemoryWatch(roots) as watch:
                    result = measure(args, cfg, bodies, hosts, url, node.url, queue, proc,
                                     root)
                    watch.sample()
            report(args, cfg, mb, len(bodies), result, watch.peaks, url, home, dagster_home)
            return 0 if result["loaded_s"] is not None else 1
    finally:
        node.stop()


def publish_parallel(amqp: str, queue: str, bodies: list[bytes], hosts: list[str],
                     publishers: int) -> None:
    """Publish from ``publishers`` connections at once, as many nodes do; each
    host's messages stay on one connection, in order (a message without a
    header continues its host's file)."""
    shares: list[list[bytes]] = [[] for _ in range(publishers)]
    slot: dict[str, int] = {}
    for host, body in zip(hosts, bodies, strict=True):
        shares[slot.setdefault(host, len(slot) % publishers)].append(body)
    errors: list[BaseException] = []

    def send(share: list[bytes]) -> None:
        try:
            publish_messages(amqp, queue, share)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares if share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def measure(args, cfg: DemoConfig, bodies: list[bytes], hosts: list[str], url: str, amqp: str,
            queue: str, proc: subprocess.Popen, root: Path) -> dict:
    total = len(bodies)
    t0 = time.perf_counter()
    publish_parallel(amqp, queue, bodies, hosts, args.publishers)
    publish_s = time.perf_counter() - t0
    say(f"published {total} messages in {publish_s:.1f} s ({total / publish_s:.0f} msg/s)")
    empty_s = loaded_s = None
    last = ""
    deadline = time.monotonic() + args.timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                say(f"dagster-daemon exited; see {root / 'daemon.log'}")
                break
            depth = queue_depth(amqp, queue)
            if depth == 0 and empty_s is None:
                empty_s = time.perf_counter() - t0
                say(f"queue empty after {empty_s:.1f} s")
            loaded = samples_loaded(conn)
            line = f"queue {depth}, samples in host_data {loaded}/{total}"
            if line != last:
                say(line)
                last = line
            if depth == 0 and loaded >= total:
                loaded_s = time.perf_counter() - t0
                say(f"every sample in host_data after {loaded_s:.1f} s")
                break
            time.sleep(2)
    # let the runs in flight finish, so run records and statistics are complete
    settle = time.monotonic() + 300
    while time.monotonic() < settle:
        if run_summary(root / "dagster_home")[2] == 0:
            break
        time.sleep(3)
    time.sleep(2)  # statistics are flushed to shared memory about once a second
    return {"publish_s": publish_s, "empty_s": empty_s, "loaded_s": loaded_s}


def report(args, cfg: DemoConfig, mb: float, total: int, result: dict, peaks: Peaks, url: str,
           home: Path, dagster_home: Path) -> None:
    real_s = args.minutes * 60
    with psycopg.connect(url) as conn:
        written, deleted = written_deleted(conn)
        kept = conn.execute("SELECT count(*) FROM host_data").fetchone()[0]
        db_bytes = conn.execute("SELECT pg_database_size('hpcperf')").fetchone()[0]
        dagster_bytes = conn.execute("SELECT pg_database_size('dagster')").fetchone()[0]
        bare_rows, bare_rate = bare_copy_rows_per_s(conn)
    by, overheads, unfinished = run_summary(dagster_home)
    loaded_s = result["loaded_s"]
    print()
    print(f"## soak: {cfg.nodes} {cfg.shape}-shaped nodes x {args.minutes:g} min "
          f"({total} messages, {mb:.1f} MB; {args.publishers} publishers, sensor interval "
          f"{args.sensor_interval} s, max concurrent runs {args.max_concurrent_runs})")
    print("| measure | value |\n| --- | --- |")
    print(f"| publish | {result['publish_s']:.1f} s, {total / result['publish_s']:.0f} msg/s, "
          f"{mb / result['publish_s']:.1f} MB/s |")
    empty = result["empty_s"]
    print(f"| queue empty after first publish | {empty:.1f} s |" if empty is not None
          else "| queue empty | never |")
    if loaded_s is not None:
        print(f"| every sample in host_data after first publish | {loaded_s:.1f} s |")
        print(f"| headroom vs real time ({real_s:.0f} s of cluster time) | "
              f"{real_s / loaded_s:.1f}x |")
        print(f"| end-to-end host_data rows/s | {kept / loaded_s:,.0f} "
              f"({kept / loaded_s / bare_rate:.2f}x a bare COPY of the same rows: "
              f"{bare_rate:,.0f} rows/s) |")
    else:
        print("| every sample in host_data | not within the timeout |")
    print(f"| host_data rows written / deleted / kept | {written:,} / {deleted:,} / {kept:,} "
          f"(written/kept {written / max(kept, 1):.2f}) |")
    print(f"| database bytes: hpcperf / Dagster | {db_bytes / 1e6:.1f} MB / "
          f"{dagster_bytes / 1e6:.1f} MB |")
    print(f"| archive bytes | {dir_bytes(home / 'archive') / 1e6:.1f} MB |")
    runs = ", ".join(f"{job} {status.lower()} {n}" for (job, status), n in sorted(by.items()))
    print(f"| Dagster runs | {sum(by.values())} ({runs}); unfinished {unfinished} |")
    if overheads:
        o = sorted(overheads)
        print(f"| launch overhead (RUN_STARTING to first STEP_START) | median "
              f"{o[len(o) // 2]:.1f} s, max {o[-1]:.1f} s, total {sum(o):.0f} s |")
    print("| peak RSS, one process / all of the role together | |")
    for name in sorted(peaks.one):
        print(f"| {name} ({len(peaks.processes[name])} processes) | "
              f"{peaks.one[name] / 1024:.0f} MB / {peaks.together[name] / 1024:.0f} MB |")
    print("\nprocesses, by role (a command line of each):")
    for name, cmd in sorted(peaks.example.items()):
        print(f"  {name}: {cmd}")
    print(f"\nbare COPY baseline: {bare_rows:,} rows; load average after: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine)")


if __name__ == "__main__":
    sys.exit(main())
