"""The README's first command, small: ``hpcperf demo`` end to end through Dagster's daemon.

A 4-node, 3-hour demo cluster goes through the real RabbitMQ, Dagster
(``dagster-webserver`` and ``dagster-daemon`` running the sensors and the
automation, on by default), the embedded-style test database
and the dashboards server; the runner must finish on its own and print URLs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from hpcperfstats.ports import free_port

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_through_the_daemon(hpcperf_env, pg_url, rabbit):
    env = dict(os.environ, HPCPERF_AMQP_URL=rabbit.url, HPCPERF_CLUSTER="demorunner",
               HPCPERF_SENSOR_INTERVAL="2")
    dagster_port, web_port = free_port(), free_port()
    out = subprocess.run(
        [sys.executable, "-m", "hpcperfstats.cli", "demo", "--nodes", "4", "--hours", "3",
         "--exit-when-done", "--timeout", "400", "--dagster-port", str(dagster_port),
         "--web-port", str(web_port)],
        env=env, capture_output=True, text=True, timeout=480,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # 4 CPU nodes and the demo's GPU node x 36 samples (3 h at 300 s)
    assert "published 180/180 samples" in out.stdout
    assert f"http://127.0.0.1:{web_port}/jobs" in out.stdout
    assert f"http://127.0.0.1:{dagster_port}" in out.stdout
    with psycopg.connect(pg_url) as conn:
        hosts, = conn.execute("SELECT count(DISTINCT host) FROM host_data").fetchone()
        finished, with_metrics = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM job_metrics m "
            "WHERE m.jobid = j.jobid AND m.value IS NOT NULL)) FROM job_data j "
            "WHERE end_time IS NOT NULL").fetchone()
        # slurm_jobs loaded the scripts the demo wrote beside its dumps: one per finished job
        scripts, = conn.execute("SELECT count(*) FROM job_scripts s JOIN job_data j USING "
                                "(cluster, jobid) WHERE j.end_time IS NOT NULL").fetchone()
    assert hosts == 4 + 1
    assert scripts == finished
    assert finished > 0 and with_metrics == finished
