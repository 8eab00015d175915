"""Two clusters in one database: job ids and host names repeat, nothing mixes.

The data set's cluster (``cluster_name()``) and ``frontera`` (``load_other``)
both have jobs 1001 and 1002 and hosts c001 and c002. Alice ran 1001 and 1003
on the first and 1002 on frontera (bob's id on the first); carol ran 1001 on
frontera only. Every number below is worked out from the two data sets by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from bokeh_client import get, page_document
from conftest import PASSWORDS, _serve
from dashboard_dataset import HOSTS, OTHER, STEP, T0, T1, WIDE_HOSTS, load, load_other
from test_routes import basic_sign_in

from dashboards import auth, cluster, data, timeseries
from dashboards.auth import Viewer
from dashboards.users import hash_password, save
from hpcperfstats.config import cluster_name

ALICE = Viewer("alice", staff=False)
CAROL = Viewer("carol", staff=False)
WEEK = (T0 - timedelta(days=1), T0 + timedelta(days=7))


def on(viewer: Viewer, name: str) -> Viewer:
    return replace(viewer, cluster=name)


@pytest.fixture
def conn(dataset: str):
    load_other(dataset)
    with psycopg.connect(dataset, options="-c TimeZone=UTC") as connection:
        yield connection


def ids(conn, viewer) -> list[str]:
    return sorted(data.list_jobs(conn, None, viewer)[0]["jobid"].to_list())


def test_each_cluster_lists_its_own_jobs(conn):
    home = cluster_name()
    assert ids(conn, data.STAFF) == ["1001", "1002", "1003"]  # the default cluster
    assert ids(conn, on(data.STAFF, OTHER)) == ["1001", "1002"]
    assert ids(conn, on(data.STAFF, "nowhere")) == []  # an unknown name: nothing, not home
    assert data.job_record(conn, "1001", on(data.STAFF, home))["username"] == "alice"
    assert data.job_record(conn, "1001", on(data.STAFF, OTHER))["username"] == "carol"
    # per-job reads take the job's cluster: the same id, that cluster's numbers
    eff = {c: data.job_metrics(conn, "1001", c).filter(metric="cpu_efficiency")["value"][0]
           for c in (home, OTHER)}
    assert eff == {home: pytest.approx(0.766), OTHER: pytest.approx(0.25)}
    assert data.job_flags(conn, "1001", OTHER)["flag"].to_list() == ["low_cpu_efficiency"]
    assert data.job_flags(conn, "1001", home).is_empty()
    assert data.job_applications(conn, "1001", OTHER)["application"].to_list() == ["GROMACS"]
    assert sorted(data.job_applications(conn, "1001", home)["application"]) == [
        "OpenFOAM", "shell"]
    assert data.flag_names(conn, OTHER) == ["low_cpu_efficiency"]


def test_a_researcher_sees_a_clusters_jobs_only_where_they_ran_there(conn):
    home = cluster_name()
    assert ids(conn, on(ALICE, home)) == ["1001", "1003"]
    assert ids(conn, on(ALICE, OTHER)) == ["1002"]  # her 1002 there, not bob's 1002 here
    assert data.job_record(conn, "1002", on(ALICE, home)) is None  # bob's
    assert data.job_record(conn, "1002", on(ALICE, OTHER))["jobname"] == "alice-on-frontera"
    assert ids(conn, on(CAROL, home)) == []
    assert ids(conn, on(CAROL, OTHER)) == ["1001"]
    # one person on both clusters: her summary per cluster, hand-worked
    here = data.user_summary(conn, on(ALICE, home), user="alice", account=None,
                             since=None, until=None)
    assert here["jobs"] == 2
    assert float(here["core_hours"]) == pytest.approx(3300 * (64 + 640) / 3600)
    assert here["cpu_efficiency"] == pytest.approx((64 * 0.766 + 640 * 0.31) / 704)
    there = data.user_summary(conn, on(ALICE, OTHER), user="alice", account=None,
                              since=None, until=None)
    assert (there["jobs"], float(there["core_hours"]), there["cpu_efficiency"]) == (
        1, pytest.approx(3300 * 56 / 3600), pytest.approx(0.9))
    # shared accounts are the accounts of this cluster: alice's proj-cfd on frontera
    # holds only her own job there
    sharing = replace(ALICE, share_accounts=True)
    assert ids(conn, on(sharing, OTHER)) == ["1002"]


def test_application_summary_per_cluster(conn):
    there = data.application_summary(conn, on(data.STAFF, OTHER), *WEEK)
    rows = {r["application"]: r for r in there.to_dicts()}
    assert set(rows) == {"GROMACS", "LAMMPS"}
    assert rows["GROMACS"]["core_hours"] == pytest.approx(3300 * 112 / 3600)
    assert rows["LAMMPS"]["core_hours"] == pytest.approx(3300 * 56 / 3600)
    assert rows["GROMACS"]["median_cpu_efficiency"] == pytest.approx(0.25)
    assert rows["GROMACS"]["top_flags"] == "low_cpu_efficiency (1)"
    here = data.application_summary(conn, data.STAFF, *WEEK)
    assert {"GROMACS", "LAMMPS"}.isdisjoint(here["application"].to_list())
    # OpenFOAM's median efficiency over 1001 and 1003 here, not frontera's 1001 (0.25)
    openfoam = here.filter(application="OpenFOAM").to_dicts()[0]
    assert openfoam["median_cpu_efficiency"] == pytest.approx((0.766 + 0.31) / 2)
    assert data.application_names(conn, on(ALICE, OTHER)) == ["LAMMPS"]


def test_host_data_of_the_same_host_names_stays_apart(conn):
    home = cluster_name()
    fresh_home = cluster.freshness(conn, T1, home)
    fresh_other = cluster.freshness(conn, T1 + timedelta(hours=1), OTHER)
    assert sorted(fresh_other["host"]) == HOSTS
    assert fresh_other["last"].max() == T1 + STEP * 11
    assert sorted(fresh_home["host"]) == sorted(HOSTS + WIDE_HOSTS)
    assert fresh_home["last"].max() == T0 + STEP * 23  # bob's 1002 ran on to here
    # a job's series read its own cluster's samples: frontera's c001 has no 1001 of
    # the first cluster's day, and the reverse
    job = data.job_record(conn, "1001", on(data.STAFF, OTHER))
    frame = timeseries.job_series(conn, job, ["cpu_busy"])
    assert not frame.is_empty()
    assert frame["time"].min() >= T1 and frame["time"].max() <= T1 + STEP * 11
    types = timeseries.types_present(conn, ["c001"], T0, T0 + STEP * 11, cluster=OTHER)
    assert types == set()  # frontera's c001 sent nothing on the first cluster's day


# --- pages and the data API, served ------------------------------------------------------


@pytest.fixture(scope="module")
def web_two(pg_server: str, tmp_path_factory):
    """The dashboards (basic sign-in) of a deployment that declares both clusters."""
    load(pg_server)
    load_other(pg_server)
    folder = tmp_path_factory.mktemp("panel-clusters")
    clusters = folder / "clusters.yaml"
    clusters.write_text(f"clusters:\n  {cluster_name()}: {{}}\n  {OTHER}: {{}}\n")
    credentials = folder / "users.json"
    save(credentials, {user: hash_password(pw, rounds=4) for user, pw in PASSWORDS.items()})
    yield from _serve(pg_server, folder, {
        "HPCPERF_AUTH": "basic", "HPCPERF_BASIC_AUTH_FILE": str(credentials),
        "HPCPERF_STAFF": "staffer", "HPCPERF_WEB_SECRET": "test-secret-" + "y" * 30,
        "HPCPERF_CLUSTERS_FILE": str(clusters),
    })


@pytest.mark.integration
def test_pages_show_the_selected_clusters_jobs_only(web_two):
    alice = basic_sign_in(web_two, "alice")
    status, here = page_document(web_two, "jobs", alice)
    assert status == 101
    assert "hp-cluster" in here and f'"{OTHER}"' in here  # the selector lists both clusters
    assert "cfd-run" in here and "alice-on-frontera" not in here
    status, there = page_document(web_two, f"jobs?cluster={OTHER}", alice)
    assert "alice-on-frontera" in there and "cfd-run" not in there
    # the selector's cookie carries the cluster to pages opened without ?cluster=
    cookie = {"Cookie": alice["Cookie"] + f"; {auth.CLUSTER_COOKIE}={OTHER}"}
    status, job = page_document(web_two, "job?jobid=1002", cookie)
    assert "alice-on-frontera" in job and "alert(1)" not in job  # not bob's 1002
    status, job = page_document(web_two, "job?jobid=1001", cookie)
    assert "Job 1001 not found." in job and "md-run" not in job  # carol's there


@pytest.mark.integration
def test_api_answers_for_the_asked_cluster_only(web_two):
    alice = basic_sign_in(web_two, "alice")

    def jobs(path: str) -> list[str]:
        import json

        answer = get(f"{web_two}/api/v1/{path}", alice)
        assert answer.status == 200, answer.body
        return sorted(j["jobid"] for j in json.loads(answer.body)["jobs"])

    assert jobs("jobs") == ["1001", "1003"]
    assert jobs(f"jobs?cluster={OTHER}") == ["1002"]
    assert get(f"{web_two}/api/v1/jobs/1001?cluster={OTHER}", alice).status == 404  # carol's
    assert get(f"{web_two}/api/v1/jobs/1002", alice).status == 404  # bob's, first cluster
    mine = get(f"{web_two}/api/v1/jobs/1002?cluster={OTHER}", alice)
    assert mine.status == 200 and "alice-on-frontera" in mine.body
    me = get(f"{web_two}/api/v1/me?cluster={OTHER}", alice).body
    assert f'"cluster": "{OTHER}"' in me and f'"{cluster_name()}"' in me


def test_clusters_file_is_what_the_selector_lists(tmp_path: Path, monkeypatch):
    from hpcperfstats.clusters import cluster_names

    path = tmp_path / "clusters.yaml"
    path.write_text("clusters:\n  ls6: {}\n  frontera: {}\n")
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(path))
    assert cluster_names() == ["ls6", "frontera"]
    assert auth.on_cluster(ALICE, "frontera").cluster == "frontera"
    assert auth.on_cluster(ALICE, None).cluster == cluster_name()


@pytest.mark.browser
def test_the_selector_switches_every_page_to_the_other_cluster(web_two, browser, screenshots):
    from test_dashboard_access import job_rows, signed_in

    watch = signed_in(browser, web_two, "staffer")
    try:
        page = watch.page
        watch.open(f"{web_two}/jobs")
        assert sorted(job_rows(page)) == ["1001", "1002", "1003"]
        page.wait_for_load_state("networkidle")
        assert watch.errors == [], watch.errors
        page.locator(".hp-cluster select").select_option(OTHER)  # reloads on frontera
        page.wait_for_url(f"**/jobs?cluster={OTHER}", timeout=90_000)
        # leaving the page cancels what it still had in flight (its WebSocket): not an
        # error of the page; what the new page logs from here on is
        watch.errors.clear()
        page.get_by_text("md-run").first.wait_for(timeout=60_000)
        assert sorted(job_rows(page)) == ["1001", "1002"]
        assert page.locator(".hp-cluster select").input_value() == OTHER
        page.screenshot(path=str(screenshots / "cluster-selector.png"), full_page=True)
        # the next page, opened from the navigation without ?cluster=, stays there
        page.wait_for_load_state("networkidle")
        assert watch.errors == [], watch.errors
        watch.open(f"{web_two}/applications?start=2026-02-01&end=2026-03-31")
        watch.errors.clear()  # what the page left had in flight, cancelled
        page.get_by_text("GROMACS").first.wait_for(timeout=30_000)
        assert page.get_by_text("OpenFOAM").count() == 0
        page.screenshot(path=str(screenshots / "cluster-applications.png"), full_page=True)
        assert watch.errors == [], watch.errors
    finally:
        watch.close()
