"""The dashboards' queries against the real test database, and their units."""

from __future__ import annotations

import psycopg
import pytest

from dashboards import data
from dashboards.units import duration, human, plot_scale

GIB = 2**30


@pytest.fixture
def conn(dataset: str):
    with psycopg.connect(dataset, options="-c TimeZone=UTC") as connection:
        yield connection


def test_job_list_newest_first_with_efficiency(conn):
    jobs, total = data.list_jobs(conn)
    assert total == 2
    assert jobs["jobid"].to_list() == ["1002", "1001"]
    assert jobs["cpu_eff"].to_list() == [None, pytest.approx(0.766)]
    assert jobs["nodes"].to_list() == [1, 2]


def test_job_list_pages_in_sql_and_counts_all_matches(conn):
    jobs, total = data.list_jobs(conn, limit=1, offset=1)
    assert (jobs["jobid"].to_list(), total) == (["1001"], 2)
    jobs, total = data.list_jobs(conn, limit=1, offset=5)
    assert (jobs.height, total) == (0, 2)


def test_job_list_filters_user_prefix_and_state(conn):
    assert data.list_jobs(conn, user="ali")[0]["jobid"].to_list() == ["1001"]
    assert data.list_jobs(conn, state="FAILED")[0]["jobid"].to_list() == ["1002"]
    assert data.list_jobs(conn, user="alice", state="FAILED")[1] == 0
    # LIKE wildcards in user input match literally, not everything
    assert data.list_jobs(conn, user="%")[1] == 0
    assert data.list_jobs(conn, user="_lice")[1] == 0


def test_job_list_sort_keys_are_whitelisted(conn):
    jobs, _ = data.list_jobs(conn, sort="jobid", descending=False)
    assert jobs["jobid"].to_list() == ["1001", "1002"]
    jobs, _ = data.list_jobs(conn, sort="nodes; DROP TABLE job_data", descending=True)
    assert jobs["jobid"].to_list() == ["1002", "1001"]  # fell back to newest end first
    assert conn.execute("SELECT count(*) FROM job_data").fetchone()[0] == 2


def test_job_record_metrics_and_states(conn):
    assert data.job_record(conn, "nope") is None
    job = data.job_record(conn, "1001")
    assert job["hosts"] == ["c001", "c002"] and job["ncpus"] == 64
    metrics = data.job_metrics(conn, "1002")
    row = metrics.filter(metrics["metric"] == "cpu_efficiency").row(0, named=True)
    assert row["value"] is None and row["reason"] == "job too short"
    assert data.job_states(conn) == ["COMPLETED", "FAILED"]


def test_job_series_per_host_over_the_run_time(conn):
    series = data.job_series(conn, data.job_record(conn, "1001"), ["cpu_busy", "mem_used"])
    cpu = series.filter(series["series"] == "cpu_busy")
    assert cpu.group_by("host").len().sort("host").rows() == [("c001", 12), ("c002", 12)]
    first = cpu.filter(cpu["host"] == "c002").sort("time")["value"][0]
    assert first == pytest.approx(26.0)  # user+nice+system+irq+softirq; idle excluded
    mem = series.filter(series["series"] == "mem_used").sort("host", "time")
    assert mem["value"][0] == pytest.approx(25 * GIB)  # MemUsed - FilePages - Slab
    assert set(series["unit"]) == {"cores", "B"}


def test_job_series_empty_without_start_or_hosts(conn):
    assert data.job_series(conn, {"start_time": None, "hosts": ["c001"]}).is_empty()


def test_human_units():
    assert human(41.5 * GIB, "B") == "41.5 GiB"
    assert human(3.2 * GIB, "B") == "3.20 GiB"
    assert human(512, "B") == "512 B"
    assert human(125e6, "B/s") == "125.0 MB/s"
    assert human(0.766, "1") == "76.6 %"
    assert human(24.5, "cores") == "24.50 cores"
    assert human(None, "B") == "—"
    assert human(float("nan"), "B") == "—"
    assert duration(3660) == "1h 01m" and duration(90061) == "1d 01h 01m"
    assert plot_scale("B") == (2.0**30, "GiB") and plot_scale("B/s") == (1e6, "MB/s")


def test_job_list_page_pages_and_sorts_in_sql(dataset, monkeypatch):
    """The page object itself: pager buttons and header sorts re-query the database."""
    from dashboards.pages.jobs import JobList

    with psycopg.connect(dataset) as db:
        db.execute(
            "INSERT INTO job_data (jobid, username, state, end_time)"
            " SELECT (2000 + n)::text, 'carol', 'COMPLETED',"
            "        timestamptz '2026-02-01' + n * interval '1 h'"
            " FROM generate_series(1, 30) AS n"
        )
    monkeypatch.setenv("HPCPERF_DATABASE_URL", dataset)
    monkeypatch.setattr(data, "_URL", None)
    jobs = JobList()
    assert len(jobs.table.value) == 32  # 50 a page by default
    jobs.page_size.value = 25
    assert len(jobs.table.value) == 25 and jobs.prev.disabled and not jobs.next.disabled
    assert "of **32**" in jobs.status.object
    jobs.next.clicks += 1
    assert list(jobs.table.value["jobid"]) == [str(2000 + n) for n in range(7, 0, -1)]
    assert "**26–32** of **32**" in jobs.status.object and jobs.next.disabled
    jobs.table.sorters = [{"field": "jobid", "dir": "asc"}]  # what a header click sends
    assert list(jobs.table.value["jobid"][:3]) == ["1001", "1002", "2001"]
    assert jobs.offset == 0
    jobs.user.value = "bo"
    assert list(jobs.table.value["jobid"]) == ["1002"]
    assert jobs.table.value["link"][0] == "job?jobid=1002"
