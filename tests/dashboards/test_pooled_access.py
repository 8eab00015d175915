"""Researchers see other people's jobs only pooled: 20 jobs of 5 users at least.

The rule lives in ``data.scope_clause(pooled=True)`` (SQL HAVING), so every
aggregate built on it (the overview's cluster figures now, peer percentiles
later) withholds what would single out a colleague. Expected numbers are
worked out by hand below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from bokeh_client import page_document
from conftest import PROXY

from dashboards import data
from dashboards.auth import Viewer
from hpcperfstats.config import cluster_name

T0 = datetime(2026, 5, 1, tzinfo=UTC)
ALICE = Viewer("alice", staff=False)
NOBODY = Viewer(None, staff=False)


def insert(url: str, users: list[str], efficiency: list[float]) -> None:
    """One job per entry: 10 cores for an hour, ending within T0's first hours."""
    with psycopg.connect(url) as conn:
        for i, (user, eff) in enumerate(zip(users, efficiency, strict=True)):
            end = T0 + timedelta(minutes=5 * i + 60)
            conn.execute(
                "INSERT INTO job_data (jobid, username, account, state, start_time, end_time,"
                " nnodes, ncpus, elapsed_s, cluster) VALUES (%s, %s, 'acct', 'COMPLETED', %s,"
                " %s, 1, 10, 3600, %s)",
                (f"9{i:03d}", user, end - timedelta(hours=1), end, cluster_name()))
            conn.execute(
                "INSERT INTO job_metrics (jobid, metric, value, unit, day, cluster) VALUES"
                " (%s, 'cpu_efficiency', %s, '1', %s, %s)",
                (f"9{i:03d}", eff, T0.date(), cluster_name()))


def summary(url: str, viewer: Viewer, hours: float = 24):
    with psycopg.connect(url) as conn:
        return data.cluster_summary(conn, viewer, T0, T0 + timedelta(hours=hours))


def test_pool_of_20_jobs_by_5_users_is_shown_with_hand_worked_figures(pg_url):
    insert(pg_url, [f"u{i % 5}" for i in range(20)], [0.5] * 10 + [1.0] * 10)
    shown = summary(pg_url, ALICE)
    # 20 jobs x 10 cores x 1 h = 200 core-hours; (100 x 0.5 + 100 x 1.0) / 200 = 0.75
    assert shown["jobs"] == 20 and shown["users"] == 5
    assert float(shown["core_hours"]) == pytest.approx(200.0)
    assert float(shown["cpu_efficiency"]) == pytest.approx(0.75)


def test_19_jobs_are_withheld_from_researchers_not_staff(pg_url):
    insert(pg_url, [f"u{i % 5}" for i in range(19)], [0.5] * 19)
    assert summary(pg_url, ALICE) is None
    assert summary(pg_url, data.STAFF)["jobs"] == 19
    assert summary(pg_url, NOBODY) is None


def test_20_jobs_of_4_users_are_withheld(pg_url):
    insert(pg_url, [f"u{i % 4}" for i in range(20)], [0.5] * 20)
    assert summary(pg_url, ALICE) is None


def test_narrow_range_singling_out_one_job_is_withheld(pg_url):
    insert(pg_url, [f"u{i % 5}" for i in range(40)], [0.5] * 40)
    assert summary(pg_url, ALICE)["jobs"] == 40
    with psycopg.connect(pg_url) as conn:  # 5 minutes: one colleague's job
        narrow = data.cluster_summary(conn, ALICE, T0 + timedelta(minutes=60),
                                      T0 + timedelta(minutes=64))
    assert narrow is None


@pytest.mark.integration
def test_researcher_overview_shows_no_hosts_and_no_cluster_series(web_header):
    status, doc = page_document(web_header, "overview?start=2026-03-01&end=2026-03-02",
                                PROXY | {"X-Forwarded-User": "alice"})
    assert status == 101
    for host in ("c001", "c002", "w007"):
        assert host not in doc
    assert "cluster total" not in doc and "Data freshness" not in doc
    assert "Cluster-wide figures are withheld for this range" in doc  # 3 jobs, 2 users
    assert "your jobs finished in range" in doc
    status, doc = page_document(web_header, "overview?start=2026-03-01&end=2026-03-02",
                                PROXY | {"X-Forwarded-User": "carol",
                                         "X-Forwarded-Groups": "hpc-staff"})
    assert "c001" in doc and "cluster total" in doc  # staff see the cluster


@pytest.mark.integration
def test_long_range_overview_reads_aggregates_for_staff_only(web_header):
    """A week: staff get cluster totals from cluster_agg and a host's series from
    host_agg; a researcher still no cluster series."""
    url = "overview?start=2026-02-27&end=2026-03-06"
    status, doc = page_document(web_header, url, PROXY | {"X-Forwarded-User": "carol",
                                                         "X-Forwarded-Groups": "hpc-staff"})
    assert status == 101 and "cluster total" in doc and "No samples in this range" not in doc
    status, doc = page_document(web_header, url, PROXY | {"X-Forwarded-User": "alice"})
    assert status == 101 and "cluster total" not in doc and "c001" not in doc
    # the host page over the week reads host_agg: the node's series are there
    status, doc = page_document(web_header, "host?host=c001&start=2026-02-27&end=2026-03-06",
                                PROXY | {"X-Forwarded-User": "carol",
                                         "X-Forwarded-Groups": "hpc-staff"})
    assert status == 101 and "CPU cores busy" in doc  # the CPU tab; others render when opened
    assert "No samples from this host" not in doc
