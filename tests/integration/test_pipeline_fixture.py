"""The real Stampede3 file through RabbitMQ, the sensors and Dagster to PostgreSQL.

Every sample of the fixture is published as its own message (the first with
the header, like the monitor), the sensor sees the queue, the drain archives
it, host_data and job_metrics are materialised through Dagster, and the rows
in PostgreSQL are compared with numbers worked out by hand from the file.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from dagster import AssetKey
from hpcperf_monitor.rawformat import read_raw, write_header, write_sample

from hpcperfstats.archive import quarantine
from hpcperfstats.jobs.scripts import format_scripts

from .conftest import accounting_text, publish

pytestmark = pytest.mark.integration

HOST = "c571-001"
JOB = "2946877"


def fixture_messages(text: str) -> list[bytes]:
    raw = read_raw(text)
    first, *rest = raw.samples
    msgs = [write_header(first.header) + write_sample(first)]
    msgs += [write_sample(s) for s in rest]
    return [m.encode() for m in msgs]


def test_fixture_through_queue_sensor_and_dagster(pipeline, stampede_text, pg_url, rabbit):
    home, queue = pipeline_home(), os.environ["HPCPERF_CLUSTER"]
    publish(rabbit.url, queue, fixture_messages(stampede_text))
    (home / "accounting").mkdir()
    # the job ran from before the first sample to after the last one
    # its script beside the dump (hpcperf-sacct-dump --scripts), and one with a NUL byte
    (home / "accounting" / "2026-03-18.scripts.jsonl").write_text(format_scripts({
        JOB: b"#!/bin/bash\n#SBATCH -N 1\nsrun ./a.out\n", "2946878": b"echo \x00\n"}))
    (home / "accounting" / "2026-03-18.txt").write_text(
        accounting_text(JOB, "2026-03-18T20:10:00+0000", "2026-03-18T21:40:00+0000", HOST, 128)
    )

    drains = pipeline.evaluate("rabbitmq_sensor")
    assert len(drains) == 1
    drained = pipeline.execute("drain_job", drains[0])
    meta = drained.output_for_node("drain_queue_op")
    assert meta["messages"] == 17 and meta["quarantined"] == 0
    assert (home / "archive" / HOST / "1773864970").exists()
    # the fixture spans 20:16-21:34 UTC: the drain reports two archive hours
    hours = ["2026-03-18-20:00", "2026-03-18-21:00"]
    assert sorted(e.partition for e in drained.get_asset_materialization_events()) == hours

    # the automation asks for exactly those hours of host_data and its aggregates
    requested = pipeline.automate()
    assert requested == {AssetKey("host_data"): set(hours),
                         AssetKey("host_aggregates"): set(hours)}
    (built,) = pipeline.follow(requested)  # one run: the range 20:00-21:00
    assert sorted(e.partition for e in built.get_asset_materialization_events()
                  if e.asset_key == AssetKey("host_data")) == hours
    assert pipeline.automate() == {}  # both hours loaded: nothing stale

    acct = pipeline.evaluate("accounting_sensor")
    assert [r.partition_key for r in acct] == ["2026-03-18"]
    pipeline.execute("slurm_jobs_job", acct[0])
    assert len(pipeline.run_sensor("job_days_sensor", "job_tables_job")) == 1

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
        scripts = dict(conn.execute("SELECT jobid, coalesce(script, problem)"
                                    " FROM job_scripts").fetchall())
    # slurm_jobs loaded the script; the NUL one is in the quarantine, the day loaded
    assert scripts == {JOB: "#!/bin/bash\n#SBATCH -N 1\nsrun ./a.out\n",
                       "2946878": "contains NUL bytes (first at byte 5)"}
    assert [r["reason"] for r in quarantine.list_records(home / "quarantine")] == [
        "job script of job 2946878: contains NUL bytes (first at byte 5)"]
    assert metrics["hosts_with_data"] == 1.0
    assert 8.0 < metrics["cpu_cores_avg"] < 10.0
    assert metrics["cpu_efficiency"] == pytest.approx(metrics["cpu_cores_avg"] / 128)
    # awk: highest MemUsed - FilePages - Slab is in the first sample
    assert metrics["mem_hwm_bytes"] == (77921264 - 5334684 - 8161656) * 1024


def pipeline_home():
    from hpcperfstats.config import settings

    return settings().home
