"""The code server, dagster-daemon and dagster-webserver, for real, on deploy/dagster.yaml.

The three processes run as the ``pipeline-code``, ``pipeline-daemon`` and
``pipeline-web`` services would (deploy/workspace.yaml): the production
instance file in DAGSTER_HOME, its
``DAGSTER_PG_*`` settings pointing at a fresh database in the session's
embedded PostgreSQL, the workspace file, and a real RabbitMQ queue holding
the Stampede3 fixture's samples (one message per sample, the first with the
header). The test watches through the webserver's GraphQL API: the
rabbitmq_sensor ticks, a drain run is queued, launched and succeeds, the
queue ends empty and the archive holds the samples. Then ``hpcperf backfill``
rebuilds three hours copied into the archive, in runs of at most
``HPCPERF_HOURS_PER_RUN`` hours, and no process logged a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from hpcperfstats.ingest.drain import queue_depth
from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIXTURE = REPO / "tests" / "fixtures" / "real" / "stampede3-c571-001.raw"
SAMPLE_LINE = re.compile(r"^\d+(\.\d+)? \S+ \S+$")
ASSETS = {"raw_stats_archive", "host_data", "slurm_jobs", "job_metrics"}

pytestmark = pytest.mark.integration


def fixture_messages() -> list[bytes]:
    """The monitor's way: the header travels with the first sample only."""
    lines = FIXTURE.read_text().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if SAMPLE_LINE.match(line.strip())]
    bounds = [0, *starts[1:], len(lines)]
    return ["".join(lines[a:b]).encode() for a, b in zip(bounds, bounds[1:], strict=False)]


def _stop(proc: subprocess.Popen) -> None:
    """End the process group we started (daemon, its code server and run workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Stack:
    def __init__(self, web_port: int, home: Path, queue: str, amqp: str, dagster_db: str,
                 logs: Path, env: dict):
        self.base = f"http://127.0.0.1:{web_port}"
        self.home, self.queue, self.amqp, self.dagster_db, self.logs, self.env = (
            home, queue, amqp, dagster_db, logs, env)

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql", data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer
        return answer["data"]

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs.glob("*"))


def _code_server_healthy(port: int, env: dict, timeout: float = 180) -> None:
    """Wait with compose's own health check of ``pipeline-code`` (the gRPC health
    service, as ``dagster api grpc-health-check`` asks it), on this server's port."""
    deadline = time.monotonic() + timeout
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    test = compose["services"]["pipeline-code"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "127.0.0.1:4000" in test[3]
    def check_of(p: int) -> list[str]:
        return [sys.executable, "-c", test[3].replace("127.0.0.1:4000", f"127.0.0.1:{p}")]

    # it can fail: nothing serves on a fresh port
    assert subprocess.run(check_of(free_port()), env=env, capture_output=True).returncode != 0
    check = check_of(port)
    while subprocess.run(check, env=env, capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, f"code server not serving within {timeout} s"
        time.sleep(1)


@pytest.fixture
def stack(tmp_path, pg_server, rabbit) -> Iterator[Stack]:
    db = f"dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    pg = urlsplit(pg_server)
    dagster_url = pg._replace(path=f"/{db}").geturl()
    home = tmp_path / "hpcperf"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = f"deploy{uuid.uuid4().hex[:8]}"
    web_port, code_port = free_port(), free_port()
    env = dict(
        os.environ,
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_PG_HOST=pg.hostname or "127.0.0.1",
        DAGSTER_PG_PORT=str(pg.port),
        DAGSTER_PG_USER=pg.username or "",
        DAGSTER_PG_PASSWORD=pg.password or "",
        DAGSTER_PG_DB=db,
        DAGSTER_MAX_CONCURRENT_RUNS="2",
        DAGSTER_DATA_DIR=str(tmp_path / "dagster_data"),
        DAGSTER_CODE_HOST="127.0.0.1",
        DAGSTER_CODE_PORT=str(code_port),
        HPCPERF_HOME=str(home),
        HPCPERF_DATABASE_URL=pg_server,
        HPCPERF_AMQP_URL=rabbit.url,
        HPCPERF_CLUSTER=queue,
        HPCPERF_SENSOR_INTERVAL="2",
        # after the fixture's day: the drain is under test, not host_data
        HPCPERF_PARTITION_START="2026-06-01",
        # the backfill below: 3 hours in runs of at most 2
        HPCPERF_HOURS_PER_RUN="2",
    )
    workspace = str(REPO / "deploy" / "workspace.yaml")  # the code server's, as in compose
    procs = []
    try:
        for name, cmd in (
            ("code", [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1",
                      "-p", str(code_port), "-m", "hpcperf_dagster.definitions",
                      "--location-name", "hpcperfstats"]),
            ("wait", None),  # compose: depends_on pipeline-code service_healthy
            ("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace]),
            ("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1",
                           "-p", str(web_port), "-w", workspace]),
        ):
            if cmd is None:
                _code_server_healthy(code_port, env)
                continue
            with (logs / f"{name}.log").open("w") as out:
                procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out,
                                              stderr=subprocess.STDOUT,
                                              start_new_session=True))
        yield Stack(web_port, home, queue, rabbit.url, dagster_url, logs, env)
    finally:
        for proc in procs:
            _stop(proc)
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_server,
                                                                  autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


def _until(what: str, check, stack: Stack, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout:.0f} s\n{stack.log_tail()}")


LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
DRAIN_RUNS = """{ runsOrError(filter: {pipelineName: "drain_job"}) {
  ... on Runs { results { runId status tags { key value } } } } }"""
SENSOR_TICKS = """{ sensorOrError(sensorSelector: {repositoryLocationName: "hpcperfstats",
  repositoryName: "__repository__", sensorName: "rabbitmq_sensor"}) {
  ... on Sensor { sensorState { status ticks(limit: 20) { status runIds } } } } }"""


def test_daemon_drains_the_queue_and_webserver_shows_the_graph(stack, pg_url):
    messages = fixture_messages()
    assert messages[0].startswith(b"$tacc_stats") and len(messages) == 17
    assert all(m[:1].isdigit() for m in messages[1:])
    publish_messages(stack.amqp, stack.queue, messages)

    def webserver_up():
        with urllib.request.urlopen(f"{stack.base}/server_info", timeout=5) as response:
            return response.status == 200

    _until("webserver answering", webserver_up, stack, 90)

    def asset_graph():
        entries = stack.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        errors = [e["locationOrLoadError"] for e in entries
                  if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
        assert not errors, errors  # a code location that fails to load: no point waiting
        nodes = stack.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
        return {"/".join(n["assetKey"]["path"]) for n in nodes}

    assert ASSETS <= _until("code location loaded", asset_graph, stack, 60)

    def drain_succeeded():
        runs = stack.graphql(DRAIN_RUNS)["runsOrError"]["results"]
        assert not [r for r in runs if r["status"] == "FAILURE"], stack.log_tail()
        return [r for r in runs if r["status"] == "SUCCESS"]

    (run, *_) = _until("a successful drain run", drain_succeeded, stack, 150)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["hpcperf/drain"] == "true"  # what the run queue's drain limit keys on
    assert int(tags["hpcperf/queue_depth"]) == len(messages)

    sensor = stack.graphql(SENSOR_TICKS)["sensorOrError"]["sensorState"]
    assert sensor["status"] == "RUNNING"  # on by default, no one switched it on
    assert any(run["runId"] in t["runIds"] and t["status"] == "SUCCESS"
               for t in sensor["ticks"])

    assert queue_depth(stack.amqp, stack.queue) == 0  # acked after the archive was synced
    (data_file,) = [p for p in (stack.home / "archive" / "c571-001").iterdir()
                    if p.suffix != ".idx"]  # one header: one archive file
    sent = b"".join(messages).decode().splitlines()
    assert data_file.read_text().splitlines() == sent  # every sample, in order, once

    # the daemon's runs are in PostgreSQL, where every process of the stack sees them
    with psycopg.connect(stack.dagster_db) as conn:
        (stored,) = conn.execute(
            "SELECT count(*) FROM runs WHERE run_id = %s", (run["runId"],)).fetchone()
    assert stored == 1

    backfill_from_one_command(stack, pg_url)
    # nothing at start-up a person must learn to ignore, and no code server replaced
    # ("No heartbeat received ..." was a WARNING every minute): no warning in any log
    for name in ("code", "daemon", "webserver"):
        log = (stack.logs / f"{name}.log").read_text()
        assert "Warning" not in log and "WARNING" not in log, log[-3000:]


BACKFILL_RUNS = """{ partitionBackfillOrError(backfillId: "%s") {
  ... on PartitionBackfill { status runs(limit: 50) { status startTime endTime
  tags { key value } } } } }"""


def backfill_from_one_command(stack: Stack, pg_url: str) -> None:
    """Hours copied into the archive outside the pipeline, rebuilt by `hpcperf backfill`."""
    from hpcperf_demo.cluster import DemoConfig
    from hpcperf_demo.generate import iter_messages

    from hpcperfstats.ingest.drain import store_messages

    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    demo = DemoConfig(gpu_nodes=0, nodes=2, hours=3, start=start)  # 2 hosts, 12:00-15:00
    store_messages((m.text.encode() for m in iter_messages(demo)), stack.home / "archive",
                   stack.home / "quarantine")
    out = subprocess.run(
        [sys.executable, "-m", "hpcperfstats.cli", "backfill", "host_data",
         "2026-11-20T12", "2026-11-20T14", "--url", stack.base, "--wait", "--timeout", "300"],
        env=stack.env, capture_output=True, text=True, timeout=360, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + stack.log_tail()
    backfill_id = re.search(r"backfill (\w+) submitted", out.stdout).group(1)
    # progress printed as it went, ending with every hour of both assets done
    assert "host_aggregates 3/3 done, 0 running, 0 failed; host_data 3/3 done" in out.stdout
    found = stack.graphql(BACKFILL_RUNS % backfill_id)["partitionBackfillOrError"]
    assert found["status"] in ("COMPLETED", "COMPLETED_SUCCESS")
    ranges = sorted((tags["dagster/asset_partition_range_start"],
                     tags["dagster/asset_partition_range_end"])
                    for tags in ({t["key"]: t["value"] for t in r["tags"]} for r in found["runs"]))
    # bounded runs: HPCPERF_HOURS_PER_RUN=2 splits the three hours in two runs
    assert ranges == [("2026-11-20-12:00", "2026-11-20-13:00"),
                      ("2026-11-20-14:00", "2026-11-20-14:00")]
    # Both runs are in the backfill page's run list, each with its times. Whether
    # they overlap depends on how long a run takes against the daemon's dequeue
    # tick (on an idle machine the first 2-hour run can end before the second is
    # launched), so overlap is measured in benchmarks.backfill, not asserted here.
    assert all(r["startTime"] and r["endTime"] >= r["startTime"] for r in found["runs"])
    with psycopg.connect(pg_url) as conn:
        hosts, hours = conn.execute(
            "SELECT count(DISTINCT host), count(DISTINCT date_trunc('hour', time)) "
            "FROM host_data").fetchone()
    assert (hosts, hours) == (2, 3)
