"""This machine as a compute node: the real monitor, broker, Dagster and database.

The monitor samples the live /proc and /sys at a job's begin, once during
it and at its end, publishing to a real RabbitMQ; the sensors and assets
then run through Dagster into the embedded PostgreSQL, and the rows that
land in host_data and job_metrics are checked against what this machine is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from hpcperf_monitor.sampler import hostname

from hpcperfstats.jobs.accounting import short_host

from .conftest import accounting_text

pytestmark = pytest.mark.integration

JOB = "4242"


def monitor(*args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "hpcperf_monitor", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def burn(seconds: float) -> None:
    """Keep one core busy so the job has CPU use to measure."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(1000))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def test_live_monitor_through_the_pipeline(pipeline, pg_url, rabbit, tmp_path):
    from hpcperfstats.config import settings

    cfg = settings()
    common = ["--amqp-url", rabbit.url, "--cluster", cfg.queue, "--state-dir", str(tmp_path)]
    started = time.time()
    monitor("--once", "--begin", JOB, *common)
    burn(2.0)
    monitor("--once", *common)
    burn(2.0)
    monitor("--once", "--end", JOB, *common)
    ended = time.time()
    host = short_host(hostname(Path("/")))
    day = datetime.fromtimestamp(ended, UTC).strftime("%Y-%m-%d")
    cfg.accounting_dir.mkdir(parents=True)
    (cfg.accounting_dir / f"{day}.txt").write_text(
        accounting_text(JOB, iso(started - 1), iso(ended + 1), host, os.cpu_count()))

    assert len(pipeline.run_sensor("rabbitmq_sensor", "drain_job")) == 1
    assert len(pipeline.follow()) >= 1
    assert len(pipeline.run_sensor("accounting_sensor", "slurm_jobs_job")) == 1
    assert len(pipeline.run_sensor("job_days_sensor", "job_tables_job")) == 1

    ncpu = os.cpu_count()
    with psycopg.connect(pg_url) as conn:
        cpu = conn.execute(
            "SELECT time, sum(value) FROM host_data WHERE host=%s AND type='cpu' "
            "GROUP BY time ORDER BY time", (host,)).fetchall()
        # two intervals; all CPU states together add up to this machine's CPUs
        assert len(cpu) == 2
        for _, total in cpu:
            assert total == pytest.approx(ncpu, rel=0.15)
        (mem_total,) = conn.execute(
            "SELECT max(value) FROM host_data WHERE host=%s AND type='mem' "
            "AND event='MemTotal'", (host,)).fetchone()
        assert mem_total > 256 * 2**20
        (jobs,) = conn.execute(
            "SELECT count(DISTINCT jobid) FROM host_data WHERE host=%s AND jobid=%s",
            (host, JOB)).fetchone()
        assert jobs == 1
        metrics = {m: (v, r) for m, v, r in conn.execute(
            "SELECT metric, value, reason FROM job_metrics WHERE jobid=%s", (JOB,))}
    busy, reason = metrics["cpu_cores_avg"]
    assert reason is None
    # one core was kept busy by burn(); the rest of the machine adds a little
    assert 0.5 <= busy <= ncpu
    assert 0 < metrics["cpu_efficiency"][0] <= 1.02
    assert 0 < metrics["mem_hwm_bytes"][0] < mem_total
    assert metrics["hosts_with_data"] == (1.0, None)
