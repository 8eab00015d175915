"""Alerts end to end on the demo cluster, delivered to a real SMTP server on loopback.

The demo's two wasteful jobs are bob's idle-nodes job (4 nodes, 2 idle,
10 h 35 min: 2 x 38100 s / 3600 = 21.2 node-hours lost, ended 2026-11-20)
and dave's namd job (32 cores, 6 h, 21.0 % busy: 32 x 6 x 0.79 = 151.7
core-hours lost, ended 2026-11-21), and grace's job on the GPU node that held two
GPUs and kept them 1 % busy (2 GPUs x 3 h 40 min x 0.99 = 7.3 GPU-hours lost,
ended 2026-11-21); the GPU training job (90 % busy) gets none. The expected
mails are written out by hand here, not rendered by the production template.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from demo_db import DemoDB
from hpcperf_assets.alerts import alerts_sent, alerts_to_send
from smtp_sink import SmtpServer

from hpcperf_dagster.resources import Database
from hpcperfstats.alerts.deliver import SmtpSettings
from hpcperfstats.alerts.rules import load_alert_rules
from hpcperfstats.alerts.send import AlertSettings, find_alerts, opted_out, send_digests
from hpcperfstats.ports import free_port

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)
CONTACT = "Questions: hpc-help@example.org (also to stop these mails)."

BOB_TEXT = """Hello bob,

Some of your jobs on demo left much of what they reserved unused.

Job 1000008 (idle_nodes), partition normal, ended 2026-11-20 22:50 UTC [severe]
  2 of your nodes did no work: ask for fewer nodes or spread the work.
  Lost: 21.2 node-hours
  Advice: Request fewer nodes (#SBATCH --nodes), or check that srun/mpirun starts work on every node.
  Change in your job script:
    #SBATCH --nodes=2    (was 4: 2 node(s) did no work)
  Details: https://hpc.example.org/job?jobid=1000008

Questions: hpc-help@example.org (also to stop these mails).
"""  # noqa: E501

DAVE_TEXT = """Hello dave,

Some of your jobs on demo left much of what they reserved unused.

Job 1000025 (namd), partition normal, ended 2026-11-21 05:40 UTC [warning]
  Your job kept 21% of its allocated cores busy (under 25%).
  Lost: 151.7 core-hours
  Advice: Request fewer cores (#SBATCH --ntasks / --cpus-per-task), or make sure the program runs in parallel (threads, MPI ranks, OMP_NUM_THREADS).
  Change in your job script:
    #SBATCH --ntasks=9    (was 32; 6.7 of 32 cores busy on average)
  Details: https://hpc.example.org/job?jobid=1000025

Questions: hpc-help@example.org (also to stop these mails).
"""  # noqa: E501  (a mail line is as long as the advice)

GRACE_TEXT = """Hello grace,

Some of your jobs on demo left much of what they reserved unused.

Job 1000049 (prep_data), partition gpu, ended 2026-11-21 04:50 UTC [severe]
  Your GPUs were busy 1% of the time: the job ran on the CPU?
  Lost: 7.3 GPU-hours
  Advice: Check that the code uses the GPU (CUDA_VISIBLE_DEVICES, the framework's device setting), or do not request one (#SBATCH --gpus).
  Change in your job script:
    #SBATCH --gpus=1    (was 2; used 1% on average)
  Details: https://hpc.example.org/job?jobid=1000049

Questions: hpc-help@example.org (also to stop these mails).
"""  # noqa: E501


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def alerting(demo_db: DemoDB, smtp: SmtpServer, tmp_path, monkeypatch) -> DemoDB:
    """The demo database with an empty alert history, set to send through ``smtp``."""
    with psycopg.connect(demo_db.url) as conn:
        conn.execute("TRUNCATE alert_history")
    env = {"HOME": str(tmp_path / "home"), "DATABASE_URL": demo_db.url, "ALERT_MODE": "send",
           "ALERT_MAIL_DOMAIN": "example.org", "ALERT_FROM": "hpcperf@example.org",
           "ALERT_STAFF": "hpc-staff@example.org", "ALERT_CONTACT": CONTACT,
           "PUBLIC_URL": "https://hpc.example.org", "SMTP_RETRIES": "3",
           "SMTP_RETRY_WAIT_S": "0.3", "SMTP_TIMEOUT_S": "5", "SMTP_PORT": str(smtp.port)}
    for name, value in env.items():
        monkeypatch.setenv(f"HPCPERF_{name}", value)
    for name in ("ALERT_OPT_OUT", "ALERT_WEBHOOK_URL", "ALERT_CAP", "ALERT_RULES"):
        monkeypatch.delenv(f"HPCPERF_{name}", raising=False)
    return demo_db


def run_day(url: str, day: date):
    """What the two assets do for one partition."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cfg = AlertSettings.from_env()
    with psycopg.connect(url) as conn:
        find_alerts(conn, "demo", start, start + timedelta(days=1), load_alert_rules(),
                    opted_out(cfg.opt_out_file))
        return send_digests(conn, "demo", day, cfg, SmtpSettings.from_env())


def history(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT jobid, rule, username, status, digest_day FROM alert_history"
                            " ORDER BY jobid, rule").fetchall()


class Hook(BaseHTTPRequestHandler):
    posts: list[dict] = []

    def do_POST(self) -> None:
        Hook.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_demo_wasteful_jobs_get_exactly_these_digests_once(alerting, smtp, monkeypatch):
    hook = HTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    monkeypatch.setenv("HPCPERF_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{hook.server_port}/x")
    Hook.posts = []
    try:
        first, second = run_day(alerting.url, DAY1), run_day(alerting.url, DAY2)
        again = [run_day(alerting.url, d) for d in (DAY1, DAY2)]  # a re-run of both days
    finally:
        hook.shutdown()
        hook.server_close()
    assert (first.digests, second.digests, [r.digests for r in again]) == (1, 2, [0, 0])
    bob, dave, grace = smtp.sink.received  # nothing twice: three mails in all
    assert bob.recipients == ["bob@example.org", "hpc-staff@example.org"]  # severe: staff copy
    assert bob.message["Subject"] == "[hpcperfstats demo] 1 job to look at (2026-11-20)"
    assert bob.message["Cc"] == "hpc-staff@example.org"
    assert bob.part("plain") == BOB_TEXT
    page = bob.part("html")
    assert '<a href="https://hpc.example.org/job?jobid=1000008">1000008</a>' in page
    assert "<pre>#SBATCH --nodes=2    (was 4: 2 node(s) did no work)</pre>" in page
    assert dave.recipients == ["dave@example.org"] and "Cc" not in dave.message
    assert dave.message["Subject"] == "[hpcperfstats demo] 1 job to look at (2026-11-21)"
    assert dave.part("plain") == DAVE_TEXT
    assert grace.recipients == ["grace@example.org", "hpc-staff@example.org"]  # severe
    assert grace.part("plain") == GRACE_TEXT
    assert history(alerting.url) == [
        ("1000008", "idle_nodes", "bob", "sent", DAY1),
        ("1000025", "low_cpu_efficiency", "dave", "sent", DAY2),
        ("1000049", "gpus_idle", "grace", "sent", DAY2)]
    assert [p["text"].splitlines()[1] for p in Hook.posts] == [
        "- job 1000008 [severe] 2 of your nodes did no work: ask for fewer nodes or spread the "
        "work. https://hpc.example.org/job?jobid=1000008",
        "- job 1000025 [warning] Your job kept 21% of its allocated cores busy (under 25%). "
        "https://hpc.example.org/job?jobid=1000025",
        "- job 1000049 [severe] Your GPUs were busy 1% of the time: the job ran on the CPU? "
        "https://hpc.example.org/job?jobid=1000049"]


def test_opt_out_is_respected_before_and_after_alerts_are_found(alerting, smtp, tmp_path,
                                                                 monkeypatch):
    listed = tmp_path / "opt-out"
    listed.write_text("# asked on 2026-11-01\nbob  # by ticket 4711\n")
    monkeypatch.setenv("HPCPERF_ALERT_OPT_OUT", str(listed))
    start = datetime(2026, 11, 21, tzinfo=UTC)
    with psycopg.connect(alerting.url) as conn:  # dave's alert found before he opts out
        find_alerts(conn, "demo", start, start + timedelta(days=1), load_alert_rules(), set())
    listed.write_text("bob\ndave\ngrace\n")
    assert run_day(alerting.url, DAY1).digests == 0
    assert run_day(alerting.url, DAY2).digests == 0
    assert smtp.sink.received == []
    assert [(r[2], r[3]) for r in history(alerting.url)] == [
        ("bob", "opted_out"), ("dave", "opted_out"), ("grace", "opted_out")]


def test_over_the_cap_alerts_are_held_and_carried_over(alerting, smtp, tmp_path, monkeypatch):
    rules = tmp_path / "alerts.yaml"  # bob's idle-nodes job also fires an imbalance rule
    rules.write_text("""
rules:
  - {name: idle_nodes, metric: idle_nodes, op: ">=", threshold: 1, severity: severe,
     message: "{value:.0f} idle nodes", advice: nodes}
  - {name: load_imbalance, metric: cpu_imbalance, op: ">", threshold: 0.4,
     partitions: [normal], message: "imbalance {value:.0%}"}
""")
    monkeypatch.setenv("HPCPERF_ALERT_RULES", str(rules))
    monkeypatch.setenv("HPCPERF_ALERT_CAP", "1")
    assert run_day(alerting.url, DAY1).held == 1
    assert run_day(alerting.url, DAY1).digests == 0  # a re-run: the day's cap is used up
    run_day(alerting.url, DAY2)
    first, second = smtp.sink.received
    assert first.message["To"] == second.message["To"] == "bob@example.org"
    assert "Job 1000008 (idle_nodes)" in first.part("plain")
    assert "  2 idle nodes\n" in first.part("plain")  # severe first
    assert "1 more alert is held back and will come in the next digest." in first.part("plain")
    assert "  imbalance 50%\n" in second.part("plain")
    assert "held back" not in second.part("plain")
    assert [(r[1], r[3], r[4]) for r in history(alerting.url)] == [
        ("idle_nodes", "sent", DAY1), ("load_imbalance", "sent", DAY2)]


def test_smtp_server_stopped_mid_send_is_retried_without_loss(alerting, smtp):
    start = datetime(2026, 11, 20, tzinfo=UTC)
    with psycopg.connect(alerting.url) as conn:
        find_alerts(conn, "demo", start, start + timedelta(days=2), load_alert_rules(), set())

    def go_down(attempt: int) -> str | None:
        if attempt != 1:
            return None

        def outage() -> None:
            smtp.stop()
            time.sleep(1.0)  # refused connections meanwhile: the sender waits and retries
            smtp.start()
        threading.Thread(target=outage).start()
        return "421 4.3.2 shutting down"

    smtp.sink.refuse = go_down
    result = run_day(alerting.url, DAY2)  # the three digests are due on the second day
    assert result.failed == {} and result.digests == 3
    assert [r.message["To"] for r in smtp.sink.received] == [
        "bob@example.org", "dave@example.org", "grace@example.org"]
    assert smtp.sink.attempts == 4  # bob's first DATA was refused, then bob, dave, grace
    assert {r[3] for r in history(alerting.url)} == {"sent"}


def test_a_failed_delivery_fails_the_dagster_run_and_keeps_the_alert(alerting, smtp):
    smtp.stop()
    instance = DagsterInstance.ephemeral()

    def materialise():
        return materialize([alerts_to_send, alerts_sent], partition_key="2026-11-20",
                           instance=instance, resources={"db": Database(url=alerting.url)},
                           raise_on_error=False)

    failed = materialise()
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    assert failure.step_key == "alerts_sent"
    assert "not delivered" in failure.event_specific_data.error.message
    with psycopg.connect(alerting.url) as conn:
        status, attempts, error = conn.execute(
            "SELECT status, attempts, last_error FROM alert_history").fetchone()
    assert status == "pending" and attempts == 1 and "Connection refused" in error
    smtp.start()
    assert materialise().success
    assert materialise().success  # a re-run of the day sends nothing more
    assert [r.message["To"] for r in smtp.sink.received] == ["bob@example.org"]
    assert history(alerting.url)[0][3] == "sent"


def test_dry_run_writes_the_mail_and_sends_nothing(alerting, smtp, monkeypatch):
    monkeypatch.setenv("HPCPERF_ALERT_MODE", "dry-run")
    result = run_day(alerting.url, DAY1)
    (path,) = result.dry_run_files
    assert path.endswith("alerts/dry-run/2026-11-20/bob.eml")
    with open(path, "rb") as f:
        text = f.read().decode()
    assert "Subject: [hpcperfstats demo] 1 job to look at (2026-11-20)" in text
    assert "To: bob@example.org" in text and "21.2 node-hours" in text
    assert smtp.sink.received == []
    assert history(alerting.url)[0][3] == "pending"  # sent for real once the mode is send


def test_the_schedule_sends_the_previous_utc_day():
    from dagster import build_schedule_context
    from hpcperf_assets.alerts import alerts_schedule

    from hpcperf_dagster.definitions import defs

    ctx = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 22, 6, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def())
    (request,) = alerts_schedule.evaluate_tick(ctx).run_requests
    assert request.partition_key == "2026-11-21" and alerts_schedule.job_name == "alerts_job"


def test_a_user_name_that_is_no_address_is_set_aside_and_the_rest_go(alerting, smtp):
    with psycopg.connect(alerting.url) as conn:
        conn.execute("INSERT INTO alert_history (cluster, jobid, rule, username, severity,"
                     " message, rule_version, day) VALUES ('demo', '999', 'idle_nodes',"
                     " 'eve <x@evil>', 'severe', 'm', 'v', '2026-11-20')")
    result = run_day(alerting.url, DAY1)
    assert (result.digests, result.undeliverable, result.failed) == (1, 1, {})
    assert [r.message["To"] for r in smtp.sink.received] == ["bob@example.org"]
    with psycopg.connect(alerting.url) as conn:
        assert conn.execute("SELECT status, last_error FROM alert_history WHERE jobid = '999'"
                            ).fetchone() == ("undeliverable",
                                             "user name not usable as a mail address")
