"""Truncated, binary, wrong-schema and oversized messages: quarantined, never blocking."""

from __future__ import annotations

import json

import psycopg
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    build_sensor_context,
    evaluate_automation_conditions,
)

from hpcperfstats.archive import quarantine

from .conftest import HOUR, START, demo_bodies, publish, reference_rows

pytestmark = pytest.mark.integration


def bad_messages(good: list[bytes]) -> list[bytes]:
    sample = good[5].decode()  # a header-less sample of a host already archived
    cut = sample.index("\ncpu 3 ") + 12  # ends inside a cpu line: too few values
    return [
        sample[:cut].encode(),  # truncated
        b"\x00\xff\xfe\x01binary" * 10,  # binary
        sample.replace("\ncpu 0 ", "\ngpu 0 ", 1).encode(),  # a type with no schema
        good[0] + b"#" + b"x" * 9000 + b"\n",  # oversized (limit 8000 below)
    ]


def test_bad_messages_are_quarantined_and_good_ones_loaded(
        rabbit, queue, hpcperf_env, pg_url, monkeypatch):
    monkeypatch.setenv("HPCPERF_AMQP_URL", rabbit.url)
    monkeypatch.setenv("HPCPERF_CLUSTER", queue)
    monkeypatch.setenv("HPCPERF_MESSAGE_MAX_BYTES", "8000")
    from hpcperf_dagster.definitions import defs

    good = demo_bodies(nodes=3, hours=1)
    publish(rabbit.url, queue, good[:6] + bad_messages(good) + good[6:])
    instance = DagsterInstance.ephemeral()
    request = defs.get_sensor_def("rabbitmq_sensor")(build_sensor_context(instance=instance))
    result = defs.resolve_job_def("drain_job").execute_in_process(instance=instance,
                                                                    tags=request.tags)
    assert result.success  # bad input never stops the drain
    meta = result.output_for_node("drain_queue_op")
    assert (meta["messages"], meta["quarantined"]) == (40, 4)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity.value == "WARN"
    reasons = check.metadata["reasons"].value
    for word in ("oversized", "not UTF-8", "unparsable"):
        assert word in reasons
    assert check.metadata["messages"].value.count("\n") == 3  # four records listed
    stored = quarantine.list_records(hpcperf_env / "quarantine")
    assert len(stored) == 4
    details = " ".join(json.dumps(r["details"]) for r in stored)
    assert "cpu expects 7 values, got 1" in details and "'gpu' has no schema" in details

    # every good message reached host_data: the automation asks for their one hour
    requested = evaluate_automation_conditions(defs=defs, instance=instance)
    assert requested.get_requested_partitions(AssetKey("host_data")) == {"2026-11-20-12:00"}
    hd = defs.resolve_job_def("host_data_job").execute_in_process(
        instance=instance, partition_key="2026-11-20-12:00")
    assert all(c.passed for c in hd.get_asset_check_evaluations())
    with psycopg.connect(pg_url) as conn:
        got = conn.execute("SELECT count(*), count(DISTINCT (host, time)) FROM host_data"
                           ).fetchone()
    assert got == (reference_rows(good, START, START + HOUR).height, 36)
