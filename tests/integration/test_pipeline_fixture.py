"""The real Stampede3 file through RabbitMQ, the sensors and Dagster to PostgreSQL.

Every sample of the fixture is published as its own message (the first with
the header, like the monitor), the sensor sees the queue, the drain archives
it, host_data and job_metrics are materialised through Dagster, and the rows
in PostgreSQL are compared with numbers worked out by hand from the file.
"""

from __future__ import annotations

import pika
import psycopg
import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context
from hpcperf_monitor.rawformat import read_raw, write_header, write_sample

pytestmark = pytest.mark.integration

HOST = "c571-001"
JOB = "2946877"


def fixture_messages(text: str) -> list[bytes]:
    raw = read_raw(text)
    first, *rest = raw.samples
    msgs = [write_header(first.header) + write_sample(first)]
    msgs += [write_sample(s) for s in rest]
    return [m.encode() for m in msgs]


def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    conn.close()


def accounting_line(jobid: str, start: str, end: str, host: str, ncpus: int) -> str:
    from hpcperfstats.accounting import FIELDS

    values = {
        "JobID": jobid, "JobIDRaw": jobid, "User": "alice", "Account": "A-ccsc",
        "Partition": "gh", "QOS": "normal", "JobName": "train", "State": "COMPLETED",
        "ExitCode": "0:0", "Submit": start, "Start": start, "End": end,
        "Elapsed": "01:20:00", "Timelimit": "02:00:00", "NNodes": "1", "NCPUS": str(ncpus),
        "ReqMem": "0", "AllocTRES": f"cpu={ncpus},node=1", "NodeList": host,
    }
    return "|".join(FIELDS) + "\n" + "|".join(values[f] for f in FIELDS) + "\n"


@pytest.fixture
def pipeline_env(hpcperf_env, rabbit, monkeypatch, tmp_path):
    queue = f"fixture{tmp_path.name[-6:]}".replace("-", "")
    monkeypatch.setenv("HPCPERF_AMQP_URL", rabbit.url)
    monkeypatch.setenv("HPCPERF_CLUSTER", queue)
    return hpcperf_env, queue


def run_requests(result) -> list[RunRequest]:
    if isinstance(result, RunRequest):
        return [result]
    if isinstance(result, SensorResult):
        return list(result.run_requests or [])
    return []


def test_fixture_through_queue_sensor_and_dagster(pipeline_env, stampede_text, pg_url, rabbit):
    from hpcperf_dagster.definitions import defs

    home, queue = pipeline_env
    publish(rabbit.url, queue, fixture_messages(stampede_text))
    (home / "accounting").mkdir()
    # the job ran from before the first sample to after the last one
    (home / "accounting" / "2026-03-18.txt").write_text(
        accounting_line(JOB, "2026-03-18T20:10:00+0000", "2026-03-18T21:40:00+0000", HOST, 128)
    )
    instance = DagsterInstance.ephemeral()

    def evaluate(name: str):
        sensor = defs.get_sensor_def(name)
        ctx = build_sensor_context(instance=instance, cursor=None)
        return run_requests(sensor(ctx))

    drains = evaluate("rabbitmq_sensor")
    assert len(drains) == 1
    drain = defs.resolve_job_def("drain")
    result = drain.execute_in_process(instance=instance, tags=drains[0].tags)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["messages"].value == 17 and meta["quarantined"].value == 0
    assert (home / "archive" / HOST / "1773864970").exists()

    # the fixture spans 20:16-21:34 UTC: two hourly partitions, one contiguous range
    host_requests = evaluate("host_data_sensor")
    assert [r.tags["dagster/asset_partition_range_start"] for r in host_requests] == [
        "2026-03-18-20:00"]
    assert host_requests[0].tags["dagster/asset_partition_range_end"] == "2026-03-18-21:00"
    assert defs.resolve_job_def("host_data_job").execute_in_process(
        instance=instance, tags=host_requests[0].tags).success

    acct = evaluate("accounting_sensor")
    assert [r.partition_key for r in acct] == ["2026-03-18"]
    assert defs.resolve_job_def("slurm_jobs_job").execute_in_process(
        instance=instance, partition_key="2026-03-18").success

    metric_requests = evaluate("job_metrics_sensor")
    assert len(metric_requests) == 1
    assert defs.resolve_job_def("job_metrics_job").execute_in_process(
        instance=instance, tags=metric_requests[0].tags).success

    with psycopg.connect(pg_url) as conn:
        # 16 intervals of cpu rates (the first sample has no predecessor)
        (n,) = conn.execute(
            "SELECT count(*) FROM host_data WHERE host=%s AND type='cpu' AND event='user'",
            (HOST,)).fetchone()
        assert n == 16
        # first interval by hand: user jiffies summed over 128 CPUs grew by 197447 cs
        # in 1773865196.714527 - 1773864970.470903 = 226.243624 s -> 8.7272 cores
        (user,) = conn.execute(
            "SELECT value FROM host_data WHERE host=%s AND type='cpu' AND event='user' "
            "ORDER BY time LIMIT 1", (HOST,)).fetchone()
        assert user == pytest.approx(1974.47 / 226.243624, rel=1e-6)
        metrics = dict(conn.execute(
            "SELECT metric, value FROM job_metrics WHERE jobid=%s", (JOB,)).fetchall())
    assert metrics["hosts_with_data"] == 1.0
    assert 8.0 < metrics["cpu_cores_avg"] < 10.0
    assert metrics["cpu_efficiency"] == pytest.approx(metrics["cpu_cores_avg"] / 128)
    assert metrics["mem_hwm_bytes"] > 50e9
