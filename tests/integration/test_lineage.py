"""Lineage lives in Dagster: archive hours, stale hours and job days, nothing in files.

Through the real RabbitMQ, the drain job and Dagster's automation evaluated
as the daemon evaluates it: the drain reports the hours it archived as
``raw_stats_archive`` partitions; the automation requests exactly those
``host_data`` hours (the first tick included: hours archived before it are
found as never built); a sample that arrives late makes its own old hour
stale, and only that hour is rebuilt; the job days a rebuilt hour touches are
requested by ``job_days_sensor`` from its metadata.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from .conftest import accounting_text, publish

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 12, tzinfo=UTC)
H12, H13 = "2026-11-20-12:00", "2026-11-20-13:00"
HOURLY = {AssetKey("host_data"), AssetKey("host_aggregates")}


def drain(pipeline) -> list[str]:
    """One rabbitmq_sensor tick and its drain run; the archive hours it reported."""
    (request,) = pipeline.evaluate("rabbitmq_sensor")
    result = pipeline.execute("drain_job", request)
    return sorted(e.partition for e in result.get_asset_materialization_events()
                  if e.asset_key == AssetKey("raw_stats_archive"))


def test_late_sample_makes_only_its_hour_stale_and_its_job_day_follows(pipeline, pg_url):
    cfg = DemoConfig(gpu_nodes=0, nodes=1, hours=2, start=START)
    bodies = [m.text.encode() for m in iter_messages(cfg)]
    host = bodies[0].decode().split("$hostname ", 1)[1].split()[0]
    late = bodies[5]  # the 12:25 sample, held back in the node's spool
    queue = os.environ["HPCPERF_CLUSTER"]
    publish(pipeline_url(), queue, bodies[:5] + bodies[6:])

    assert drain(pipeline) == [H12, H13]
    # the first automation tick finds both hours never built and asks for them
    requested = pipeline.automate()
    assert requested == {key: {H12, H13} for key in HOURLY}
    (built,) = pipeline.follow(requested)  # one run: 12:00-13:00
    assert built.success
    assert pipeline.automate() == {}  # loaded: nothing stale, nothing asked again

    # the job that ran on the host is loaded; its end day is requested once
    home = pipeline_home()
    (home / "accounting").mkdir()
    (home / "accounting" / "2026-11-20.txt").write_text(accounting_text(
        "4242", "2026-11-20T12:00:00+0000", "2026-11-20T13:50:00+0000", host, 16))
    (dump,) = pipeline.evaluate("accounting_sensor")
    pipeline.execute("slurm_jobs_job", dump)
    days = pipeline.evaluate("job_days_sensor")
    assert [r.partition_key for r in days] == ["2026-11-20"]
    pipeline.execute("job_tables_job", days[0])
    assert pipeline.evaluate("job_days_sensor") == []  # the cursor moved on

    with psycopg.connect(pg_url) as conn:
        (before,) = conn.execute("SELECT count(DISTINCT time) FROM host_data").fetchone()
    assert before == 23  # 24 samples (gauges from the first on), one held back

    publish(pipeline_url(), queue, [late])
    assert drain(pipeline) == [H12]
    # only the late sample's own, old hour is stale (not the newest one)
    requested = pipeline.automate()
    assert requested == {key: {H12} for key in HOURLY}
    (rebuilt,) = pipeline.follow(requested)
    hours = {e.partition for e in rebuilt.get_asset_materialization_events()}
    assert hours == {H12}
    with psycopg.connect(pg_url) as conn:
        (after,) = conn.execute("SELECT count(DISTINCT time) FROM host_data").fetchone()
    assert after == 24
    # the rebuilt hour names the job's day: its tables are requested again
    assert [r.partition_key for r in pipeline.evaluate("job_days_sensor")] == ["2026-11-20"]


def pipeline_url() -> str:
    return os.environ["HPCPERF_AMQP_URL"]


def pipeline_home() -> Path:
    return Path(os.environ["HPCPERF_HOME"])
