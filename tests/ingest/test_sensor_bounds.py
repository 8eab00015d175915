"""The sensor only looks; one drain at a time; a drain is bounded in messages."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, SkipReason, build_sensor_context

from hpcperfstats.ingest.drain import drain_queue, queue_depth

from .conftest import demo_bodies, publish

pytestmark = pytest.mark.integration


def test_sensor_looks_only_and_never_starts_a_second_drain(rabbit, queue, dirs, monkeypatch):
    monkeypatch.setenv("HPCPERF_AMQP_URL", rabbit.url)
    monkeypatch.setenv("HPCPERF_CLUSTER", queue)
    from hpcperf_dagster.definitions import defs

    publish(rabbit.url, queue, demo_bodies(nodes=2, hours=1))  # 24 messages
    sensor = defs.get_sensor_def("rabbitmq_sensor")
    instance = DagsterInstance.ephemeral()
    request = sensor(build_sensor_context(instance=instance))
    assert request.tags["hpcperf/queue_depth"] == "24"
    assert queue_depth(rabbit.url, queue) == 24  # looking consumed nothing
    instance.add_run(DagsterRun(job_name="drain_job", run_id="a" * 36,
                                status=DagsterRunStatus.STARTED))
    busy = sensor(build_sensor_context(instance=instance))
    assert isinstance(busy, SkipReason) and "already running" in busy.skip_message

    result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                         max_messages=5, max_seconds=30, batch=2)
    assert result.messages == 5
    assert queue_depth(rabbit.url, queue) == 19  # prefetched but unacked ones went back
