"""The small demo cluster through archive, host_data, accounting and the job tables.

Numbers are the demo plan's ground truth: 16-core, 64 GiB nodes sampled
every 300 s; ``half_cores`` burns 8 of 16 cores on each of its two nodes,
``idle_nodes`` leaves 2 of its 4 nodes idle, ``midnight`` runs 22:00-02:00
UTC at 12 cores, ``memory_heavy`` holds 90 % of its node's memory.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from demo_db import DemoDB

from hpcperfstats.jobs.load import build_job_days, jobs_missing_metrics, metric_bound_violations

pytestmark = pytest.mark.integration


def metrics(url: str, jobid: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT metric, value, reason, source FROM job_metrics "
                            "WHERE jobid = %s", (jobid,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def flags(url: str, jobid: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT flag, message FROM job_flags WHERE jobid = %s",
                                 (jobid,)).fetchall())


def test_half_the_cores_reads_half_efficiency(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("half_cores")[0]
    m = metrics(demo_db.url, job.jobid)
    # 8 busy of 16 cores on each of 2 nodes: 16 / 32
    assert m["cpu_efficiency"][0] == pytest.approx(0.5, abs=1e-3)
    assert m["cpu_cores_avg"][0] == pytest.approx(8.0, abs=0.01)
    assert m["cpu_efficiency"][2] == "node"  # no cgroup rows in the demo
    assert m["idle_nodes"][0] == 0
    assert m["gpu_util"] == (None, "no GPUs allocated", None)
    # no PMC in the demo: NULL with the real cause, never 0 (issue 14 item 7)
    assert m["flops_avg"] == (None, "not measured: the node has no hardware performance "
                                    "counters (PMU)", None)
    assert "low_cpu_efficiency" in flags(demo_db.url, job.jobid)


def test_idle_nodes_are_counted_and_flagged(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("idle_nodes")[0]
    m = metrics(demo_db.url, job.jobid)
    assert m["idle_nodes"][0] == 2
    # busy 16, 16, 0, 0: mean 8, max 16 -> 1 - 8/16
    assert m["cpu_imbalance"][0] == pytest.approx(0.5, abs=1e-3)
    assert m["cpu_efficiency"][0] == pytest.approx(32 / 64, abs=1e-3)
    f = flags(demo_db.url, job.jobid)
    assert f["idle_nodes"].startswith("2 of your nodes did no work")
    assert "load_imbalance" in f


def test_job_spanning_midnight_gets_all_its_samples(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("midnight")[0]
    assert job.start.day != job.end.day
    samples = int((job.end - job.start).total_seconds()) // demo_db.cfg.interval + 1  # 4 h: 49
    with psycopg.connect(demo_db.url) as conn:
        n, first, last, day = conn.execute(
            "SELECT count(*), min(time), max(time), min(day) FROM job_series "
            "WHERE jobid = %s AND series = 'cpu_busy'", (job.jobid,)).fetchone()
        cov = conn.execute("SELECT expected, present, fraction, gaps FROM job_coverage "
                           "WHERE jobid = %s", (job.jobid,)).fetchall()
    assert n == samples == 49
    assert first < datetime(2026, 11, 21, tzinfo=UTC) < last
    assert day == job.end.date()  # partitioned by the day the job ended
    assert cov == [(49, 49, 1.0, [])]
    m = metrics(demo_db.url, job.jobid)
    assert m["cpu_cores_avg"][0] == pytest.approx(12.0, abs=0.01)
    assert m["cpu_imbalance"] == (None, "single node", None)


def test_memory_near_the_node_limit(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("memory_heavy")[0]
    m = metrics(demo_db.url, job.jobid)
    (host,) = job.hosts
    truth = job.mem_used_bytes[host]
    assert m["mem_hwm_bytes"][0] == pytest.approx(truth, rel=0.002)
    assert m["mem_hwm_fraction"][0] == pytest.approx(0.9, abs=0.002)
    assert "memory_near_limit" in flags(demo_db.url, job.jobid)
    # time limit: 1 h rounded up over the run, the run itself known from accounting
    run_s = (job.end - job.start).total_seconds()
    assert m["time_limit_ratio"] == (pytest.approx(job.timelimit_s / run_s), None, "accounting")


def test_every_finished_job_has_metrics_coverage_and_series(demo_db: DemoDB):
    finished = {j.jobid for j in demo_db.plan.jobs if j.end is not None}
    with psycopg.connect(demo_db.url) as conn:
        with_metrics = {r[0] for r in conn.execute("SELECT DISTINCT jobid FROM job_metrics")}
        with_cov = {r[0] for r in conn.execute("SELECT DISTINCT jobid FROM job_coverage")}
        with_series = {r[0] for r in conn.execute("SELECT DISTINCT jobid FROM job_series")}
        start = datetime(2026, 11, 20, tzinfo=UTC)
        end = start + timedelta(days=2)
        assert metric_bound_violations(conn, start, end) == []
        assert jobs_missing_metrics(conn, start, end) == []
        low = conn.execute("SELECT count(*) FROM job_coverage WHERE fraction < 1").fetchone()
    assert with_metrics == with_cov == with_series == finished
    assert low == (0,)


def test_the_rollup_draws_what_the_rows_draw(demo_db: DemoDB):
    """A long job's plot from ``job_series_rollup`` equals the same buckets averaged
    from ``job_series`` (the read when the rollup is missing): every job of the demo
    that ran over an hour, at 3 and at 20 points per host and series."""
    from dashboards.timeseries import stored_job_series
    from hpcperfstats.hostdata.series import SERIES

    names = list(SERIES)
    with psycopg.connect(demo_db.url) as conn:
        jobs = conn.execute(
            "SELECT jobid, start_time, end_time FROM job_data WHERE end_time - start_time"
            " > interval '1 hour' AND jobid IN (SELECT jobid FROM job_series) ORDER BY jobid"
        ).fetchall()
        assert len(jobs) >= 5
        widths = set()
        for jobid, start, end in jobs:
            for points in (3, 20):
                if (end - start).total_seconds() / points < 600:
                    continue  # buckets under the narrowest width read job_series anyway
                rolled = stored_job_series(conn, jobid, start, end, names, points)
                widths.add(points)
                with conn.transaction(force_rollback=True):
                    conn.execute("DELETE FROM job_series_rollup WHERE jobid = %s", (jobid,))
                    rows = stored_job_series(conn, jobid, start, end, names, points)
                assert rolled.height == rows.height > 0, jobid
                assert rolled.drop("value").equals(rows.drop("value")), jobid
                assert rolled["value"].to_list() == pytest.approx(rows["value"].to_list(),
                                                                  rel=1e-9, nan_ok=True)
    assert widths == {3, 20}


def _job_tables(url: str) -> tuple[dict, dict, set]:
    with psycopg.connect(url) as conn:
        jobs = {r[0]: r[1:] for r in conn.execute(
            "SELECT jobid, username, account, partition, jobname, state, nnodes, ncpus,"
            " elapsed_s, hosts, start_time, end_time FROM job_data")}
        values = {(r[0], r[1]): r[2:] for r in conn.execute(
            "SELECT jobid, metric, value, reason FROM job_metrics")}
        raised = set(conn.execute("SELECT jobid, flag FROM job_flags").fetchall())
    return jobs, values, raised


def test_another_anchor_gives_the_same_jobs_metrics_and_flags(demo_db: DemoDB, pg_server,
                                                              tmp_path):
    """The demo anchored elsewhere (ending at an odd time of another day, as `hpcperf demo`
    anchors at now) is the same cluster shifted in time: same job ids, users, states,
    metrics and flags; every start and end moved by the same amount. (Runs before the
    rebuild test below, which cuts an hour out of the default load.)"""
    from demo_db import load_demo
    from hpcperf_demo.cluster import DemoConfig

    from hpcperfstats.db.schema import ensure_schema

    # in the past: the monitor's format refuses samples from the future
    shifted = DemoConfig.ending_at(datetime(2026, 10, 7, 7, 41, 13, tzinfo=UTC))
    assert shifted.start == datetime(2026, 10, 6, 7, 40, tzinfo=UTC)  # rounded to 300 s
    delta = shifted.start - demo_db.cfg.start
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS demo_anchor")
        conn.execute("CREATE DATABASE demo_anchor")
    url = pg_server.rsplit("/", 1)[0] + "/demo_anchor"
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
    other = load_demo(url, tmp_path, shifted)
    assert [(j.jobid, j.user, j.hosts) for j in other.plan.jobs] == [
        (j.jobid, j.user, j.hosts) for j in demo_db.plan.jobs]
    jobs, values, raised = _job_tables(demo_db.url)
    jobs2, values2, raised2 = _job_tables(url)
    assert {k: v[:-2] for k, v in jobs2.items()} == {k: v[:-2] for k, v in jobs.items()}
    for jobid, row in jobs.items():
        assert jobs2[jobid][-2] - row[-2] == delta
        assert row[-1] is None or jobs2[jobid][-1] - row[-1] == delta
    assert len(values) > 100 and values2.keys() == values.keys()

    def same(a: tuple, b: tuple) -> bool:
        if a[1] != b[1] or (a[0] is None) != (b[0] is None):
            return False
        return a[0] is None or b[0] == pytest.approx(a[0], rel=1e-9, abs=1e-12)

    differ = {key: (values[key], values2[key]) for key in values
              if not same(values[key], values2[key])}
    assert differ == {}
    assert raised2 == raised and raised


def test_rebuild_is_idempotent_and_a_lost_hour_shows_as_a_gap(demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("cpu_bound")[0]
    host = job.hosts[0]
    day = datetime(2026, 11, 20, tzinfo=UTC)
    hole = (datetime(2026, 11, 20, 14, tzinfo=UTC), datetime(2026, 11, 20, 15, tzinfo=UTC))
    with psycopg.connect(demo_db.url) as conn:
        before = conn.execute("SELECT count(*) FROM job_series").fetchone()
        again = build_job_days(conn, day, day + timedelta(days=2))
        assert conn.execute("SELECT count(*) FROM job_series").fetchone() == before
        assert again.series_rows == before[0]
        assert conn.execute("SELECT count(*) FROM job_series_rollup").fetchone() == (
            again.rollup_rows,)
        conn.execute("DELETE FROM host_data WHERE host = %s AND time >= %s AND time < %s",
                     (host, *hole))
        build_job_days(conn, day, day + timedelta(days=1))
        expected, present, fraction, gaps = conn.execute(
            "SELECT expected, present, fraction, gaps FROM job_coverage "
            "WHERE jobid = %s AND host = %s", (job.jobid, host)).fetchone()
    # 12 samples of 5 min lost; the gap runs from the 13:55 sample to the 15:00 one
    assert present == expected - 12
    assert fraction == pytest.approx((expected - 12) / expected)
    assert len(gaps) == 1
    assert gaps[0][0].startswith("2026-11-20T13:55:00") and gaps[0][1].startswith(
        "2026-11-20T15:00:00")
    assert json.dumps(gaps)
