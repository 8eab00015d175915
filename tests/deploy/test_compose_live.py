"""The compose stack, running for real, tested from outside as a site uses it.

``deploy/ci/run`` (the compose stage of ``./scripts/test``) builds the images
without a registry, brings ``deploy/compose.yaml`` up with the CI override
and runs this module with ``CI_COMPOSE_ENV`` naming the stack's
settings (``$STATE/ci.env``). Everything here goes through the ports the
override publishes on 127.0.0.1: HTTPS and HTTP of the proxy, AMQP of the
broker (as a node's monitor publishes), the database (for the tests' own
queries), and the accounting drop directory the pipeline mounts. Compose
itself is used only to restart, stop and recreate containers, the way an
admin would.

The tests share one stack and run in file order: data arrives first, then
survives restarts, then a ``down``/``up``; the TimescaleDB checks compress
the chunks last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pika.exceptions
import psycopg
import pytest
from test_dagster_stack import fixture_messages
from test_nginx import _WebSocket

from hpcperfstats.ingest.drain import queue_depth
from hpcperfstats.ingest.publish import publish_messages

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ACCOUNTING = REPO / "tests" / "fixtures" / "accounting" / "2026-03-18.txt"
JOBID = "2946877"  # jdoe's job on c571-001 in both fixtures
ENV_FILE = os.environ.get("CI_COMPOSE_ENV", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ENV_FILE, reason="the compose stage runs these (deploy/ci/run; "
                                            "HPCPERF_TEST_COMPOSE=1 ./scripts/test)"),
]


class Stack:
    """The running stack as the host sees it: its settings and loopback ports."""

    def __init__(self, env_file: Path):
        self.env_file = env_file
        self.env = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                        if re.match(r"^[A-Z_]+=", line))
        e = self.env
        self.https = f"https://127.0.0.1:{e['HPCPERF_HTTPS_PORT']}"
        self.http = f"http://127.0.0.1:{e['HPCPERF_HTTP_PORT']}"
        self.db = (f"postgresql://{e['HPCPERF_DB_USER']}:{e['HPCPERF_DB_PASSWORD']}"
                   f"@127.0.0.1:{e['CI_DB_PORT']}/{e['HPCPERF_DB_NAME']}")
        self.amqp = (f"amqp://{e['HPCPERF_AMQP_USER']}:{e['HPCPERF_AMQP_PASSWORD']}"
                     f"@127.0.0.1:{e['HPCPERF_AMQP_PORT']}/%2F")
        self.queue = e["HPCPERF_CLUSTER"]
        self.users = dict(pair.split(":", 1) for pair in e["CI_USERS"].split(","))
        self.accounting = Path(e["HPCPERF_ACCOUNTING_DROP"])
        # the certificate deploy/ci/up made: TLS is verified, not waved through
        self.tls = ssl.create_default_context(cafile=str(Path(e["HPCPERF_TLS_DIR"])
                                                         / "fullchain.pem"))

    def compose(self, *args: str, timeout: float = 300) -> str:
        cmd = ["docker", "compose", "--project-name", self.env["CI_COMPOSE_PROJECT"],
               "--project-directory", str(DEPLOY), "--env-file", str(self.env_file),
               "-f", str(DEPLOY / "compose.yaml"), "-f", str(DEPLOY / "ci" / "compose.ci.yaml"),
               *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", *services)

    def query(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.db, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()

    def dagster_runs_in_flight(self) -> int:
        """Runs queued or running, from Dagster's own database on the same server."""
        e = self.env
        url = (f"postgresql://{e['DAGSTER_PG_USER']}:{e['DAGSTER_PG_PASSWORD']}"
               f"@127.0.0.1:{e['CI_DB_PORT']}/{e['DAGSTER_PG_DB']}")
        with psycopg.connect(url, connect_timeout=10) as conn:
            (n,), = conn.execute("SELECT count(*) FROM runs WHERE status IN "
                                 "('QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED')").fetchall()
        return n

    def opener(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.tls),
            urllib.request.HTTPCookieProcessor(CookieJar()))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(Path(ENV_FILE))


def until(what: str, check: Callable[[], Any], timeout: float, stack: Stack,
          services: tuple[str, ...] = ("pipeline-daemon",)) -> Any:
    """Poll ``check`` until it returns something true; fail with the logs after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, psycopg.Error, pika.exceptions.AMQPError):  # restarting: look again
            value = None
        if value:
            return value
        time.sleep(1)  # each check is one query or one HTTP request: cheap
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{stack.logs(*services)}")


def host_rows(stack: Stack, host: str) -> tuple[int, int]:
    """(rows, distinct sample times) of one host in host_data."""
    rows = stack.query("SELECT count(*), count(DISTINCT time) FROM host_data WHERE host = %s",
                       host)
    return rows[0]


def messages_for(host: str) -> list[bytes]:
    """The Stampede3 fixture as the monitor sends it, as if from another node."""
    return [m.replace(b"c571-001", host.encode()) for m in fixture_messages()]


def sign_in(stack: Stack, user: str) -> urllib.request.OpenerDirector:
    opener = stack.opener()
    form = urllib.parse.urlencode({"username": user, "password": stack.users[user]}).encode()
    with opener.open(f"{stack.https}/login", data=form, timeout=60) as resp:
        assert "error" not in urllib.parse.urlparse(resp.url).query, resp.url
    return opener


def job_document(stack: Stack, opener: urllib.request.OpenerDirector, jobid: str) -> str:
    """The job page's Bokeh document, as the signed-in browser gets it through the proxy."""
    with opener.open(f"{stack.https}/job?jobid={jobid}", timeout=60) as resp:
        page = resp.read().decode()
    (token,) = re.findall(r'"token":"([^"]+)"', page)
    jar = next(h.cookiejar for h in opener.handlers if hasattr(h, "cookiejar"))
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    port = int(stack.env["HPCPERF_HTTPS_PORT"])
    return _WebSocket(port, "/job/ws", {"Origin": stack.https, "Cookie": cookies,
                                        "Sec-WebSocket-Protocol": f"bokeh, {token}"}
                      ).pull_document()


def test_proxy_redirects_to_https_and_serves_tls(stack):
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(f"{stack.http}/job?jobid={JOBID}", timeout=30)
    assert moved.value.code == 301
    assert moved.value.headers["Location"] == f"https://127.0.0.1/job?jobid={JOBID}"
    # the certificate is checked against the one the proxy was given
    with stack.opener().open(f"{stack.https}/login", timeout=60) as resp:
        assert resp.status == 200
        assert "max-age=" in resp.headers["Strict-Transport-Security"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "password" in resp.read().decode().lower()


def test_dagster_ui_behind_the_proxy(stack):
    with stack.opener().open(f"{stack.https}/dagster/server_info", timeout=60) as resp:
        info = json.load(resp)
    assert info["dagster_version"] == "1.13.27"
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    request = urllib.request.Request(f"{stack.https}/dagster/graphql", data=query,
                                     headers={"Content-Type": "application/json"})
    with stack.opener().open(request, timeout=60) as resp:
        nodes = json.load(resp)["data"]["assetNodes"]
    assert {"raw_stats_archive", "host_data", "slurm_jobs", "job_metrics"} <= {
        "/".join(n["assetKey"]["path"]) for n in nodes}


def test_published_sample_reaches_host_data(stack):
    """A node's monitor publishes to the broker's port; the daemon's sensors do the rest."""
    messages = fixture_messages()
    assert len(messages) == 17  # one sample per message; the header rides on the first
    publish_messages(stack.amqp, stack.queue, messages)
    times = until("the samples in host_data", lambda: host_rows(stack, "c571-001")[1] == 17,
                  600, stack)
    assert times
    rows, distinct = host_rows(stack, "c571-001")
    assert distinct == 17 and rows > 17  # every sample, each with many counters
    (jobids,) = stack.query("SELECT array_agg(DISTINCT jobid) FROM host_data "
                            "WHERE host = 'c571-001'")[0]
    assert jobids == [JOBID]
    assert queue_depth(stack.amqp, stack.queue) == 0


def test_accounting_dump_reaches_job_metrics(stack):
    """The login node's daily sacct dump, dropped where the pipeline reads it."""
    target = stack.accounting / ACCOUNTING.name
    shutil.copyfile(ACCOUNTING, target)
    target.chmod(0o644)
    until("job metrics of the dumped day",
          lambda: stack.query("SELECT count(*) FROM job_metrics WHERE jobid = %s", JOBID)[0][0],
          600, stack)
    (user, nnodes, hosts), = stack.query(
        "SELECT username, nnodes, hosts FROM job_data WHERE jobid = %s", JOBID)
    assert (user, nnodes, hosts) == ("jdoe", 1, ["c571-001"])
    # 9 lines: a header and 8 jobs
    assert stack.query("SELECT count(*) FROM job_data WHERE source_day = '2026-03-18'")[0][0] == 8


def test_job_page_through_the_proxy_shows_the_signed_in_owner(stack):
    owner = job_document(stack, sign_in(stack, "jdoe"), JOBID)
    assert "Signed in as jdoe" in owner and "train_llm" in owner
    other = job_document(stack, sign_in(stack, "asmith"), JOBID)
    assert "Signed in as asmith" in other
    assert f"Job {JOBID} not found." in other and "train_llm" not in other


def counts(stack: Stack) -> dict[str, int]:
    return {table: stack.query(f"SELECT count(*) FROM {table}")[0][0]
            for table in ("host_data", "job_data", "job_metrics")}


def settled(stack: Stack) -> dict[str, int]:
    """The tables once the pipeline has nothing left to do (the runs a change set off)."""
    until("the pipeline idle", lambda: stack.dagster_runs_in_flight() == 0, 600, stack)
    return counts(stack)


def test_restarts_of_broker_database_and_pipeline_lose_nothing(stack):
    before = settled(stack)
    # samples arrive while the pipeline is down; the broker keeps them across its restart
    stack.compose("stop", "--timeout", "20", "pipeline-daemon")
    publish_messages(stack.amqp, stack.queue, messages_for("c571-002"))
    stack.compose("restart", "--timeout", "20", "rabbitmq")
    until("the broker back with the queued samples",
          lambda: queue_depth(stack.amqp, stack.queue) == 17, 180, stack, ("rabbitmq",))
    stack.compose("restart", "--timeout", "20", "db")
    until("the database back", lambda: counts(stack) == before, 180, stack, ("db",))
    stack.compose("start", "pipeline-daemon")
    until("the second node's samples in host_data",
          lambda: host_rows(stack, "c571-002")[1] == 17, 600, stack)
    assert host_rows(stack, "c571-002") == host_rows(stack, "c571-001")
    after = counts(stack)
    assert after["host_data"] == 2 * before["host_data"]
    assert after["job_data"] == before["job_data"]
    assert queue_depth(stack.amqp, stack.queue) == 0


def test_down_and_up_keep_the_volumes(stack):
    before = settled(stack)
    stack.compose("down", "--timeout", "20")
    assert not stack.compose("ps", "-q").strip()
    stack.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "420",
                  timeout=480)
    assert counts(stack) == before
    # users, secrets and sessions' keys come back the same: sign-in still works
    assert "Signed in as jdoe" in job_document(stack, sign_in(stack, "jdoe"), JOBID)
    # and the recreated pipeline goes on where it was: a third node arrives
    publish_messages(stack.amqp, stack.queue, messages_for("c571-003"))
    until("the third node's samples in host_data",
          lambda: host_rows(stack, "c571-003")[1] == 17, 600, stack)


def test_timescaledb_hypertables_and_compression(stack):
    (version,), = stack.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert version == "2.29.2"
    hypertables = dict(stack.query(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"))
    assert hypertables.get("host_data") is True
    before = host_rows(stack, "c571-001")
    # the compression policy, run now rather than on its schedule: the fixture's
    # March chunk is older than HPCPERF_COMPRESS_AFTER (7 days)
    (job,), = stack.query("SELECT job_id FROM timescaledb_information.jobs WHERE "
                          "proc_name = 'policy_compression' AND hypertable_name = 'host_data'")
    with psycopg.connect(stack.db, autocommit=True) as conn:
        conn.execute(f"CALL run_job({int(job)})")
    compressed = stack.query("SELECT count(*) FILTER (WHERE is_compressed), count(*) "
                             "FROM timescaledb_information.chunks "
                             "WHERE hypertable_name = 'host_data'")[0]
    assert compressed[0] == compressed[1] > 0
    assert host_rows(stack, "c571-001") == before  # the same rows, read from compressed chunks
