"""The dashboards' queries against the real test database, and their units."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from dashboard_dataset import T0, WIDE_HOSTS

from dashboards import auth, cluster, data, timeseries
from dashboards.auth import Viewer
from dashboards.data import JobFilter
from dashboards.units import duration, human, plot_scale
from hpcperfstats.config import cluster_name

GIB = 2**30
ALICE = Viewer("alice", staff=False)
BOB = Viewer("bob", staff=False)
NOBODY = Viewer(None, staff=False)


@pytest.fixture
def conn(dataset: str):
    with psycopg.connect(dataset, options="-c TimeZone=UTC") as connection:
        yield connection


def ids(conn, filt=None, viewer=data.STAFF, **kwargs) -> list[str]:
    return data.list_jobs(conn, filt, viewer, **kwargs)[0]["jobid"].to_list()


def test_job_list_newest_first_with_efficiency_and_flags(conn):
    jobs, total = data.list_jobs(conn)
    assert total == 3
    assert jobs["jobid"].to_list() == ["1002", "1003", "1001"]
    assert jobs["cpu_eff"].to_list() == [None, pytest.approx(0.31), pytest.approx(0.766)]
    assert jobs["flags"].to_list() == ["memory_near_limit", "low_cpu_efficiency", None]
    assert jobs["runtime"].to_list() == [3300, 3300, 3300]


def test_job_list_pages_in_sql_and_counts_all_matches(conn):
    jobs, total = data.list_jobs(conn, limit=1, offset=2)
    assert (jobs["jobid"].to_list(), total) == (["1001"], 3)
    jobs, total = data.list_jobs(conn, limit=1, offset=5)
    assert (jobs.height, total) == (0, 3)


def test_search_filters(conn):
    assert ids(conn, JobFilter(user="ali")) == ["1003", "1001"]
    assert ids(conn, JobFilter(state="FAILED")) == ["1002"]
    assert ids(conn, JobFilter(user="alice", state="FAILED")) == []
    assert ids(conn, JobFilter(account="proj-m")) == ["1002"]
    assert ids(conn, JobFilter(partition="normal")) == ["1003", "1001"]
    assert ids(conn, JobFilter(name="SWEEP")) == ["1003"]
    assert ids(conn, JobFilter(min_nodes=2, max_nodes=2)) == ["1001"]
    assert ids(conn, JobFilter(min_runtime_s=3000, max_runtime_s=3400)) == ["1002", "1003",
                                                                           "1001"]
    assert ids(conn, JobFilter(max_runtime_s=60)) == []
    assert ids(conn, JobFilter(since=T0 + timedelta(hours=1, minutes=40))) == ["1002"]
    assert ids(conn, JobFilter(until=T0 + timedelta(minutes=30))) == ["1003", "1001"]
    assert ids(conn, JobFilter(metric="cpu_efficiency", metric_max=0.5)) == ["1003"]
    assert ids(conn, JobFilter(metric="cpu_efficiency", metric_min=0.5)) == ["1001"]
    assert ids(conn, JobFilter(flag="memory_near_limit")) == ["1002"]
    # LIKE wildcards in user input match literally, not everything
    assert ids(conn, JobFilter(user="%")) == [] and ids(conn, JobFilter(name="_")) == []
    # an unknown metric name is ignored, never spliced into SQL
    assert len(ids(conn, JobFilter(metric="x'; DROP TABLE job_data; --", metric_min=1))) == 3


def test_name_contains_can_use_the_trigram_index(conn):
    # ILIKE '%x%' on a million jobs was a full scan; the schema adds a pg_trgm
    # index where the extension exists (it does in the embedded server). The
    # clause also keeps to the viewer's cluster, the primary key's first column,
    # which every job of a one-cluster site matches: a few thousand jobs of the
    # cluster (rolled back; the index's pending list flushed as autovacuum would)
    # and their statistics let the planner see that, and scans stay forbidden
    # so the plan shows the index is usable by the clause.
    where, params = data.job_filter_clause(conn, JobFilter(name="sweep"), data.STAFF)
    with conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO job_data (cluster, jobid, username, jobname)"
                     " SELECT %s, 'filler' || g, 'u' || g %% 50, 'job-' || md5(g::text)"
                     " FROM generate_series(1, 5000) g", (cluster_name(),))
        conn.execute("SELECT gin_clean_pending_list('job_data_jobname_trgm'::regclass)")
        conn.execute("ANALYZE job_data")
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            psycopg.sql.SQL("EXPLAIN SELECT j.jobid FROM job_data j WHERE {}").format(where),
            params))
    assert "job_data_jobname_trgm" in plan, plan


def test_sort_keys_are_allow_listed(conn):
    assert ids(conn, sort="jobid", descending=False) == ["1001", "1002", "1003"]
    assert ids(conn, sort="cpu_eff", descending=True) == ["1001", "1003", "1002"]
    assert ids(conn, sort="nodes; DROP TABLE job_data") == ["1002", "1003", "1001"]
    assert conn.execute("SELECT count(*) FROM job_data").fetchone()[0] == 3


def test_researchers_see_only_their_jobs_in_every_query(conn, monkeypatch):
    assert ids(conn, viewer=ALICE) == ["1003", "1001"]
    assert ids(conn, JobFilter(user="bob"), ALICE) == []
    assert ids(conn, viewer=BOB) == ["1002"]
    assert ids(conn, viewer=NOBODY) == []
    assert data.job_record(conn, "1002", ALICE) is None
    assert data.job_record(conn, "1002", BOB)["username"] == "bob"
    assert data.job_record(conn, "1002", data.STAFF) is not None
    assert data.metrics_for_jobs(conn, ["1001", "1002"], ALICE)["jobid"].unique().to_list() == [
        "1001"]
    assert data.distinct_values(conn, "partition", BOB) == ["gpu"]
    start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
    assert cluster.most_flagged(conn, ALICE, start, end)["jobid"].to_list() == ["1003"]
    assert cluster.job_counts(conn, BOB, start, end) == {"running": 0, "finished": 1}
    assert [j["jobid"] for j in cluster.host_jobs(conn, ALICE, "c002", start, end)] == ["1001"]
    summary = data.user_summary(conn, ALICE, user="bob", account=None, since=start, until=end)
    assert summary["jobs"] == 0


def test_shared_accounts_open_the_accounts_jobs(conn):
    with conn.transaction():
        conn.execute("INSERT INTO job_data (jobid, username, account, cluster) VALUES "
                     "('2001', 'carol', 'proj-ml', %s)", (cluster_name(),))
    share = Viewer("carol", staff=False, share_accounts=True)
    assert ids(conn, viewer=share) == ["2001", "1002"]  # no end time (running, pending): first
    assert ids(conn, viewer=Viewer("carol", staff=False)) == ["2001"]


def test_viewer_from_auth_mode(monkeypatch):
    monkeypatch.setenv("HPCPERF_AUTH", "none")
    assert auth.resolve(None).staff
    monkeypatch.setenv("HPCPERF_AUTH", "basic")
    monkeypatch.setenv("HPCPERF_STAFF", "root, staffer")
    monkeypatch.setenv("HPCPERF_STAFF_GROUP", "hpc-staff")
    assert auth.resolve("staffer").staff and not auth.resolve("alice").staff
    assert auth.resolve("alice", {"hpc-staff"}).staff
    assert auth.resolve(None) == NOBODY and auth.resolve("guest") == NOBODY
    monkeypatch.setenv("HPCPERF_AUTH", "kerberos")
    with pytest.raises(ValueError):
        auth.mode()


def test_record_metrics_flags_coverage_sources(conn):
    assert data.job_record(conn, "nope") is None
    job = data.job_record(conn, "1001")
    assert job["hosts"] == ["c001", "c002"] and job["ncpus"] == 64
    metrics = data.job_metrics(conn, "1002")
    row = metrics.filter(metrics["metric"] == "cpu_efficiency").row(0, named=True)
    assert row["value"] is None and row["reason"] == "job too short"
    assert data.job_flags(conn, "1003")["advice"].to_list() == ["cores"]
    assert data.job_flags(conn, "1001").is_empty()
    assert data.job_coverage(conn, "1001")["fraction"].to_list() == [1.0, pytest.approx(10 / 12)]
    assert data.used_sources(conn, "1001")["cpu_efficiency"] == "cgroup"
    assert data.flag_names(conn) == ["low_cpu_efficiency", "memory_near_limit"]


def test_pages_work_before_the_later_stages_ran(conn):
    """Migration 1 makes every table, so "not yet computed" is empty tables, never missing ones."""
    with conn.transaction(force_rollback=True):
        conn.execute("DELETE FROM job_flags")
        conn.execute("DELETE FROM job_coverage")
        jobs, total = data.list_jobs(conn, JobFilter(flag="anything"))
        assert total == 0
        assert data.list_jobs(conn)[0]["flags"].to_list() == [None] * 3
        assert data.job_flags(conn, "1003").is_empty()
        assert data.job_coverage(conn, "1001").is_empty()
        assert data.flag_names(conn) == []
        assert timeseries.data_interval(conn, "1001") is None


def test_job_series_per_host_bucketed(conn):
    job = data.job_record(conn, "1001")
    series = timeseries.job_series(conn, job, ["cpu_busy", "mem_used", "ib_bw"])
    cpu = series.filter(series["series"] == "cpu_busy")
    # the rate stamped at the job's start covers the interval before it: left off the plot
    assert cpu.group_by("host").len().sort("host").rows() == [("c001", 11), ("c002", 11)]
    first = cpu.filter(cpu["host"] == "c002").sort("time")["value"][0]
    assert first == pytest.approx(27.0)  # user+nice+system+irq+softirq; idle excluded
    mem = series.filter(series["series"] == "mem_used").sort("host", "time")
    assert mem["value"][0] == pytest.approx(25 * GIB)  # a gauge: the start's own reading
    assert series.filter(series["series"] == "ib_bw")["value"].min() == pytest.approx(3.1e8)
    # at most max_points buckets per host, each the mean of its samples
    coarse = timeseries.job_series(conn, job, ["cpu_busy"], max_points=3)
    assert coarse.group_by("host").len()["len"].max() <= 4
    assert coarse["value"].mean() == pytest.approx(cpu["value"].mean(), rel=0.05)


def test_extra_types_and_cgroup(conn):
    job = data.job_record(conn, "1001")
    extra = timeseries.extra_types(conn, job["hosts"], job["start_time"], job["end_time"])
    assert set(extra["type"]) == {"numa"}  # ib_ext is a named series, cgroup is per job
    own = timeseries.cgroup(conn, job["hosts"], "1001", job["start_time"], job["end_time"])
    assert set(own["series"]) == {"cg_cpu"} and own.height == 24
    assert timeseries.cgroup(conn, job["hosts"], "1002", job["start_time"],
                             job["end_time"]).is_empty()


def test_freshness_marks_silent_hosts(conn):
    fresh = cluster.freshness(conn, now=T0 + timedelta(hours=2))
    assert fresh.height == 2 + len(WIDE_HOSTS)
    row = fresh.filter(fresh["host"] == "c001").row(0, named=True)
    assert row["interval_s"] == 300 and row["silent"]  # last sample 10:55, 65 min ago
    fresh = cluster.freshness(conn, now=T0 + timedelta(hours=1, minutes=58))
    assert not fresh.filter(fresh["host"] == "c002")["silent"][0]  # c002 ran to 11:55


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


def test_search_page_pages_sorts_and_exports_in_sql(dataset, monkeypatch):
    """The page object itself: pager buttons and header sorts re-query the database."""
    from dashboards.pages.jobs import JobSearch, export_csv

    with psycopg.connect(dataset) as db:
        db.execute(
            "INSERT INTO job_data (jobid, username, state, end_time, cluster)"
            " SELECT (2000 + n)::text, 'carol', 'COMPLETED',"
            "        timestamptz '2026-02-01' + n * interval '1 h', %s"
            " FROM generate_series(1, 30) AS n", (cluster_name(),)
        )
    monkeypatch.setenv("HPCPERF_DATABASE_URL", dataset)
    monkeypatch.setattr(data, "_URL", None)
    jobs = JobSearch(data.STAFF)
    assert len(jobs.table.value) == 33  # 50 a page by default
    jobs.page_size.value = 25
    assert len(jobs.table.value) == 25 and jobs.prev.disabled and not jobs.next.disabled
    assert "of **33**" in jobs.status.object
    jobs.next.clicks += 1
    assert list(jobs.table.value["jobid"]) == [str(2000 + n) for n in range(8, 0, -1)]
    assert "**26–33** of **33**" in jobs.status.object and jobs.next.disabled
    jobs.table.sorters = [{"field": "jobid", "dir": "asc"}]  # what a header click sends
    assert list(jobs.table.value["jobid"][:3]) == ["1001", "1002", "1003"]
    assert jobs.offset == 0
    jobs.user.value = "bo"
    assert list(jobs.table.value["jobid"]) == ["1002"]
    assert jobs.table.value["link"][0] == "job?jobid=1002"
    jobs.user.value = ""
    jobs.metric.value = "cpu_efficiency"
    jobs.metric_max.value = 50.0  # percent on screen, a fraction in the database
    assert list(jobs.table.value["jobid"]) == ["1003"]
    csv = jobs._export().read().splitlines()
    assert csv[0].startswith("jobid,user,account") and csv[1].startswith("1003,alice")
    assert len(export_csv(data.list_jobs(psycopg.connect(dataset))[0]).read().splitlines()) == 34


# Core-hours by hand: every job ran 3300 s; 1001 on 64 cores (76.6 % busy), 1003 on
# 640 (31 %), bob's 1002 on 32 (no efficiency: too short, so no waste shown).
CH_1001, CH_1003, CH_1002 = 3300 * 64 / 3600, 3300 * 640 / 3600, 3300 * 32 / 3600
WASTE_1001, WASTE_1003 = CH_1001 * (1 - 0.766), CH_1003 * (1 - 0.31)


def test_user_breakdown_top_users_and_wasted_core_hours(conn):
    staff = data.user_breakdown(conn, JobFilter(), data.STAFF)
    assert staff["user"].to_list() == ["alice", "bob"]  # most core-hours first
    alice, bob = staff.to_dicts()
    assert (alice["jobs"], alice["failed"], bob["jobs"], bob["failed"]) == (2, 0, 1, 1)
    assert alice["core_hours"] == pytest.approx(CH_1001 + CH_1003)  # 645.33
    assert alice["wasted_core_hours"] == pytest.approx(WASTE_1001 + WASTE_1003)  # 418.53
    assert alice["cpu_efficiency"] == pytest.approx(
        (CH_1001 * 0.766 + CH_1003 * 0.31) / (CH_1001 + CH_1003))  # 35.1 %
    assert (bob["core_hours"], bob["wasted_core_hours"], bob["cpu_efficiency"]) == (
        pytest.approx(CH_1002), 0.0, None)
    wasters = data.user_breakdown(conn, JobFilter(), data.STAFF, order="wasted_core_hours",
                                  limit=1)
    assert wasters["user"].to_list() == ["alice"]
    # the account filter (exact, as the account page asks) and the access rule apply
    account = JobFilter(account="proj-ml", exact=True)
    assert data.user_breakdown(conn, account, data.STAFF)["user"].to_list() == ["bob"]
    assert data.user_breakdown(conn, account, ALICE).is_empty()
    assert data.user_breakdown(conn, JobFilter(), ALICE)["user"].to_list() == ["alice"]
    with pytest.raises(ValueError):
        data.user_breakdown(conn, JobFilter(), data.STAFF, order="username; DROP")
    totals = data.jobs_summary(conn, JobFilter(), data.STAFF)
    assert (totals["jobs"], totals["completed"], totals["failed"]) == (3, 2, 1)
    assert totals["wasted_core_hours"] == pytest.approx(WASTE_1001 + WASTE_1003)
    assert data.flag_counts(conn, JobFilter(), data.STAFF) == [
        ("low_cpu_efficiency", 1), ("memory_near_limit", 1)]
    assert data.flag_counts(conn, JobFilter(), ALICE) == [("low_cpu_efficiency", 1)]


def test_summary_and_breakdown_in_one_pass(conn):
    """The users page's totals and per-user rows from one GROUPING SETS query: the
    same figures, worked out by hand above, as each read alone."""
    totals, users = data.summary_and_breakdown(conn, JobFilter(), data.STAFF)
    assert (totals["jobs"], totals["completed"], totals["failed"]) == (3, 2, 1)
    assert totals["core_hours"] == pytest.approx(CH_1001 + CH_1003 + CH_1002)
    assert totals["wasted_core_hours"] == pytest.approx(WASTE_1001 + WASTE_1003)
    assert totals["cpu_efficiency"] == pytest.approx(
        (CH_1001 * 0.766 + CH_1003 * 0.31) / (CH_1001 + CH_1003))
    assert totals == data.jobs_summary(conn, JobFilter(), data.STAFF)
    assert users["user"].to_list() == ["alice", "bob"]
    assert users.row(0, named=True)["core_hours"] == pytest.approx(CH_1001 + CH_1003)
    mine, only = data.summary_and_breakdown(conn, JobFilter(), ALICE)  # the access rule
    assert mine["jobs"] == 2 and only["user"].to_list() == ["alice"]
    none, nobody = data.summary_and_breakdown(conn, JobFilter(user="nobody"), data.STAFF)
    assert (none["jobs"], none["core_hours"], nobody.height) == (0, 0.0, 0)


def test_account_filter_can_use_an_index(conn):
    """The account page need not read every job (1 M in the benchmark): an index on
    job_data (account, end_time) serves its filter."""
    from psycopg import sql

    def plan(filt: JobFilter) -> str:
        where, params = data.job_filter_clause(conn, filt, data.STAFF)
        query = sql.SQL("EXPLAIN SELECT count(*) FROM job_data j WHERE {w}").format(w=where)
        return "\n".join(r[0] for r in conn.execute(query, params))

    conn.execute("ANALYZE job_data")
    conn.execute("SET enable_seqscan = off")  # a few rows: show what the condition can use
    account = plan(JobFilter(account="proj-cfd", exact=True))
    assert "job_data_account" in account and "Index Cond: (account =" in account, account


def test_user_page_shares_the_search_widgets_and_its_to_date_is_inclusive(dataset,
                                                                           monkeypatch):
    """The user page is the search page's widgets and table (one class); a "to" date of
    the day the jobs ran keeps them (the old page cut at that day's midnight)."""
    from dashboards.pages.jobs import JobSearch
    from dashboards.pages.user import UserPage

    monkeypatch.setenv("HPCPERF_DATABASE_URL", dataset)
    monkeypatch.setattr(data, "_URL", None)
    day = T0.replace(hour=0)
    page = UserPage(data.STAFF, user="alice", start=day, end=day)
    assert isinstance(page, JobSearch)
    assert sorted(page.table.value["jobid"]) == ["1001", "1003"]
    assert page.filters().until == day + timedelta(days=1) - timedelta(microseconds=1)
    text = " ".join(str(p.object) for p in page.summary if hasattr(p, "object"))
    assert "user alice" in text and "low_cpu_efficiency (1)" in text
    assert f"{CH_1001 + CH_1003:,.0f}" in text and f"{WASTE_1001 + WASTE_1003:,.0f}" in text
    assert "Top wasted core-hours" not in text  # one user: no ranking
    page.user.value = ""  # staff, everyone: per-user ranking and top wasters
    text = " ".join(str(p.object) for p in page.summary if hasattr(p, "object"))
    assert "Top users by core-hours" in text and "Top wasted core-hours" in text
    assert sorted(page.table.value["jobid"]) == ["1001", "1002", "1003"]
    page.until.value = (day - timedelta(days=1)).date()  # the day before: nothing ran
    assert page.table.value.empty
    mine = UserPage(ALICE, start=day, end=day)  # a researcher lands on their own jobs
    assert mine.user.value == "alice" and sorted(mine.table.value["jobid"]) == ["1001", "1003"]
    mine.user.value = "bob"
    assert mine.table.value.empty
    text = " ".join(str(p.object) for p in mine.summary if hasattr(p, "object"))
    assert "Top wasted" not in text and "bob" in text  # nothing of bob's: 0 jobs


def test_item9_short_job_bucketed_by_its_own_interval(conn):
    """A 1-minute job sampled every 10 s: 10 s buckets (not 30 s), each drawn at
    its sample, so the line reaches the job's last sample."""
    start = T0 + timedelta(days=3)
    times = [start + timedelta(seconds=3 + 10 * i) for i in range(7)]  # 3 s .. 63 s
    with conn.transaction():
        conn.execute("INSERT INTO job_coverage (jobid, host, interval_s, expected, present,"
                     " fraction, day, cluster) VALUES ('9001', 'c1', 10, 7, 7, 1, %s, %s)",
                     (start.date(), cluster_name()))
        for i, t in enumerate(times):
            conn.execute("INSERT INTO job_series (jobid, host, series, time, value, day, cluster)"
                         " VALUES ('9001', 'c1', 'cg_cpu', %s, %s, %s, %s)",
                         (t, float(i), start.date(), cluster_name()))
    end = start + timedelta(seconds=63)
    assert timeseries.bucket_seconds(start, end, interval_s=10.0) == 10
    assert timeseries.bucket_seconds(start, end) == timeseries.MIN_BUCKET_S  # unknown interval
    frame = timeseries.stored_job_series(conn, "9001", start, end, ["cg_cpu"])
    # the rate stamped at 3 s covers -7 s .. 3 s, mostly before the job: not drawn
    assert frame["time"].to_list() == times[1:]
    assert frame["value"].to_list() == [float(i) for i in range(1, 7)]


def test_search_by_application_is_scoped_like_every_job_query(conn):
    assert ids(conn, JobFilter(application="OpenFOAM")) == ["1003", "1001"]
    assert ids(conn, JobFilter(application="Python")) == ["1002"]
    assert ids(conn, JobFilter(application="Python"), viewer=ALICE) == []  # bob's job
    assert ids(conn, JobFilter(application="unknown"), viewer=BOB) == ["1002"]
    assert ids(conn, JobFilter(application="VASP")) == []
    assert data.application_names(conn) == ["OpenFOAM", "Python", "shell", "unknown"]
    assert data.application_names(conn, ALICE) == ["OpenFOAM", "shell"]


def test_application_summary_worked_by_hand(conn):
    """Each job ran 3300 s. OpenFOAM: 0.9 of 1001 (64 cores) + all of 1003 (640 cores)
    = (0.9 * 64 + 640) * 3300 / 3600 = 639.47 core-hours; median CPU efficiency of
    0.766 and 0.31 = 0.538; 1003's flag. Python: 0.7 * 32 * 3300 / 3600 = 20.53."""
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    summary = {r["application"]: r for r in
               data.application_summary(conn, data.STAFF, since, until).iter_rows(named=True)}
    # by core-hours: unknown 0.3 * 32 * 3300 / 3600 = 8.8, shell 0.1 * 64 * 3300 / 3600 = 5.87
    assert list(summary) == ["OpenFOAM", "Python", "unknown", "shell"]
    assert summary["unknown"]["core_hours"] == pytest.approx(8.8)
    foam = summary["OpenFOAM"]
    assert (foam["jobs"], foam["users"], foam["category"]) == (2, 1, "fluid dynamics")
    assert foam["core_hours"] == pytest.approx((0.9 * 64 + 640) * 3300 / 3600)
    assert foam["gpu_hours"] == 0
    assert foam["median_cpu_efficiency"] == pytest.approx((0.766 + 0.31) / 2)
    assert foam["top_flags"] == "low_cpu_efficiency (1)"
    py = summary["Python"]
    assert py["core_hours"] == pytest.approx(0.7 * 32 * 3300 / 3600)
    assert py["median_cpu_efficiency"] is None  # 1002 was too short to have one
    assert py["top_flags"] == "memory_near_limit (1)"
    # a researcher's summary is of their own jobs only
    mine = data.application_summary(conn, ALICE, since, until)
    assert mine["application"].to_list() == ["OpenFOAM", "shell"]
    one = data.application_summary(conn, data.STAFF, since, until, "Python")
    assert one["application"].to_list() == ["Python"]
    assert data.application_summary(conn, NOBODY, since, until).is_empty()


def test_a_jobs_applications_for_its_page(conn):
    from hpcperfstats.apps.detect import by_application

    rows = data.job_applications(conn, "1002")
    apps = by_application(rows)
    assert apps["application"].to_list() == ["Python", "unknown"]
    assert apps["executables"].to_list() == ["/usr/bin/python3.11", "/home/bob/bin/train"]
    assert data.job_applications(conn, "9999").is_empty()


def test_peer_percentiles_are_shown_to_a_researcher_only_over_20_jobs_of_5_users(conn):
    job = data.job_record(conn, "1001")
    values = {"cpu_efficiency": 0.766}
    # staff: the partition's two jobs; 1001 ties itself (half) and is above 1003 (0.31)
    peer = data.peer_context(conn, job, values, data.STAFF)["cpu_efficiency"]
    assert (peer["jobs"], peer["users"]) == (2, 1)
    assert float(peer["below"]) == pytest.approx(0.75)
    assert peer["median"] == pytest.approx((0.766 + 0.31) / 2)
    assert data.peer_context(conn, job, values, ALICE) == {"cpu_efficiency": None}
    # 18 more jobs of five other users (efficiency 0, 0.05, ... 0.85) make 20 jobs of 6
    end = job["end_time"] - timedelta(hours=1)
    for i in range(18):
        jobid = str(2000 + i)
        conn.execute("INSERT INTO job_data (jobid, username, account, partition, state,"
                     " start_time, end_time, nnodes, ncpus, cluster) VALUES (%s, %s, 'p',"
                     " 'normal', 'COMPLETED', %s, %s, 1, 4, %s)",
                     (jobid, f"u{i % 5}", end - timedelta(hours=1), end, cluster_name()))
        conn.execute("INSERT INTO job_metrics (jobid, metric, value, unit, day, cluster) VALUES"
                     " (%s, 'cpu_efficiency', %s, '1', %s, %s)",
                     (jobid, i / 20, end.date(), cluster_name()))
    peer = data.peer_context(conn, job, values, ALICE)["cpu_efficiency"]
    # below 0.766: 1003 and i/20 for i <= 15 (16 jobs); itself half: 17.5 of 20
    assert (peer["jobs"], peer["users"]) == (20, 6)
    assert float(peer["below"]) == pytest.approx(17.5 / 20)
    # the footprint's norms over the sorted 20 (0, 0.05, ..., 0.30, 0.31, 0.35, ..., 0.75,
    # 0.766, 0.80, 0.85): percentile_cont at (n - 1) x q = 1.9, 4.75, 14.25, 17.1
    assert peer["p10"] == pytest.approx(0.05 + 0.9 * 0.05)
    assert peer["p25"] == pytest.approx(0.20 + 0.75 * 0.05)
    assert peer["p75"] == pytest.approx(0.65 + 0.25 * 0.05)
    assert peer["p90"] == pytest.approx(0.766 + 0.1 * (0.80 - 0.766))
    # one job fewer (19): withheld again; a job of another partition is no peer
    conn.execute("UPDATE job_data SET partition = 'gpu' WHERE jobid = '2017'")
    assert data.peer_context(conn, job, values, ALICE) == {"cpu_efficiency": None}
    # a job that ended more than 30 days before is no peer either
    conn.execute("UPDATE job_data SET partition = 'normal', end_time = end_time - interval "
                 "'31 days' WHERE jobid = '2017'")
    assert data.peer_context(conn, job, values, ALICE) == {"cpu_efficiency": None}
    conn.rollback()


def test_job_list_before_a_date_puts_jobs_running_then_first(pg_url):
    """A range in the past ("ran before" U, newest end first): the jobs still running at
    U (no end yet, then the latest end) come before those that ended by it, read as
    two parts (``list_jobs``); a page that spans both parts keeps the order."""
    u = T0 + timedelta(days=60)
    h = timedelta(hours=1)
    jobs = {"r1": (u - 2 * h, None), "s1": (u - h, u + 3 * h), "s2": (u - 5 * h, u + h),
            "e1": (u - 3 * h, u - h), "e2": (u - 10 * h, u - h / 2),
            "late": (u + h, u + 2 * h), "old": (u - 40 * 24 * h, u - 35 * 24 * h)}
    with psycopg.connect(pg_url, options="-c TimeZone=UTC") as conn:
        conn.cursor().executemany(
            "INSERT INTO job_data (jobid, username, state, start_time, end_time, cluster)"
            " VALUES (%s, 'alice', 'COMPLETED', %s, %s, %s)",
            [(j, s, e, cluster_name()) for j, (s, e) in jobs.items()])
        filt = JobFilter(since=u - 30 * 24 * h, until=u)
        order = ["r1", "s1", "s2", "e2", "e1"]
        assert data.list_jobs(conn, filt)[0]["jobid"].to_list() == order
        assert data.list_jobs(conn, filt)[1] == 5
        for n in (1, 2, 3, 4):
            assert ids(conn, filt, limit=n) == order[:n]
        assert ids(conn, filt, limit=2, offset=2) == order[2:4]  # the one-query path
        assert ids(conn, filt, viewer=BOB) == []
