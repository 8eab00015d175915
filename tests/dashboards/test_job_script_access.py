"""A job script is its owner's data: the owner and staff read it, nobody else; shown as
text, whatever it holds. Bob's script (``dashboard_dataset.HOSTILE_SCRIPT``) would
close the ``<pre>``, add an image with an ``onerror``, and run formulas in a
spreadsheet."""

from __future__ import annotations

from html import escape

import psycopg
import pytest
from conftest import PASSWORDS
from dashboard_dataset import HOSTILE_SCRIPT, SCRIPTS
from pagewatch import PageWatch

from dashboards import data
from dashboards.auth import Viewer
from hpcperfstats.config import cluster_name
from hpcperfstats.report.presentation import NO_SCRIPT, NOT_YOURS

ALICE, BOB = Viewer("alice", staff=False), Viewer("bob", staff=False)


def test_owner_and_staff_read_a_script_nobody_else(dataset: str):
    with psycopg.connect(dataset) as conn:
        with conn.transaction():  # carol runs under bob's account: she may see his job
            conn.execute("INSERT INTO job_data (jobid, username, account, cluster) VALUES "
                         "('2001', 'carol', 'proj-ml', %s)", (cluster_name(),))
        bobs = data.job_record(conn, "1002", BOB)
        assert data.job_script(conn, bobs, BOB)["script"] == HOSTILE_SCRIPT
        assert data.job_script(conn, bobs, data.STAFF)["script"] == HOSTILE_SCRIPT
        assert data.job_record(conn, "1002", ALICE) is None  # not her job: not found
        carol = Viewer("carol", staff=False, share_accounts=True)
        seen = data.job_record(conn, "1002", carol)
        assert seen is not None and data.job_script(conn, seen, carol) is None
        # a forged job record (owner rewritten to the reader) does not pass the SQL rule
        assert data.job_script(conn, {**bobs, "username": "alice"}, ALICE) is None
        assert data.job_script(conn, {**bobs, "username": "carol"}, carol) is None
        nobody = Viewer(None, staff=False)
        assert data.job_script(conn, bobs, nobody) is None
        # alice's own job has hers; the job without one has none
        assert data.job_script(conn, data.job_record(conn, "1001", ALICE), ALICE)[
            "script"] == SCRIPTS["1001"]
        assert data.job_script(conn, data.job_record(conn, "1003", ALICE), ALICE) is None


def _signed_in(browser, base: str, user: str) -> PageWatch:
    watch = PageWatch(browser, 2000)
    watch.open(f"{base}/login")
    watch.page.locator("input[name=username]").fill(user)
    watch.page.locator("input[name=password]").fill(PASSWORDS[user])
    watch.page.get_by_role("button", name="Sign in").click()
    watch.page.wait_for_load_state("networkidle")
    return watch


@pytest.mark.browser
def test_hostile_script_is_text_for_its_owner_and_hidden_from_others(web_basic, browser,
                                                                     screenshots, tmp_path):
    watch = _signed_in(browser, web_basic, "bob")
    try:
        page = watch.page
        watch.open(f"{web_basic}/job?jobid=1002")
        pre = page.locator("pre.hp-script")
        pre.wait_for(timeout=60_000)
        # every character as written (the tab too); no element made of it
        assert pre.inner_text() == HOSTILE_SCRIPT
        assert pre.locator("*").count() == 0
        assert page.locator("img[src=x]").count() == 0
        pre.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "job-script-hostile.png"), full_page=True)
        # no CSV the page exports carries the script
        watch.open(f"{web_basic}/jobs")
        page.locator(".tabulator .tabulator-row").first.wait_for(timeout=30_000)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        path = tmp_path / "jobs.csv"
        download.value.save_as(path)
        exported = path.read_text()
        assert "1002" in exported and "HYPERLINK" not in exported and "calc" not in exported
        assert watch.dialogs == [] and watch.errors == [], watch.errors
    finally:
        watch.close()
    watch = _signed_in(browser, web_basic, "alice")  # another researcher: not even the job
    try:
        watch.open(f"{web_basic}/job?jobid=1002")
        watch.page.get_by_text("Job 1002 not found.").wait_for(timeout=30_000)
        assert watch.page.locator("pre.hp-script").count() == 0
        assert "HYPERLINK" not in watch.page.content()
    finally:
        watch.close()
    watch = _signed_in(browser, web_basic, "staffer")
    try:
        watch.open(f"{web_basic}/job?jobid=1002")
        pre = watch.page.locator("pre.hp-script")
        pre.wait_for(timeout=60_000)
        assert pre.inner_text() == HOSTILE_SCRIPT
    finally:
        watch.close()


def test_script_view_says_why_nothing_is_shown():
    from dashboards.pages.job_ran import script_view

    job = {"username": "bob", "jobid": "1002"}
    assert escape(NOT_YOURS) in script_view(job, {"script": "x"}, ALICE)  # never the text
    assert "x</pre>" not in script_view(job, {"script": "x"}, ALICE)
    assert escape(NO_SCRIPT) in script_view(job, None, BOB)
    aside = script_view(job, {"script": None, "problem": "contains NUL bytes (first at byte 3)",
                              "truncated": False, "size_bytes": 9}, BOB)
    assert "set aside, not shown: it contains NUL bytes (first at byte 3)" in aside
    cut = script_view(job, {"script": "a" * 10, "problem": None, "truncated": True,
                            "size_bytes": 3 * 2**20}, BOB)
    assert "Only the first 10 B of 3.00 MiB are stored" in cut
    # control characters but newline and tab shown as escapes, markup as text
    shown = script_view(job, {"script": "a\tb\x1b[31m<b>\n", "problem": None,
                              "truncated": False, "size_bytes": 12}, BOB)
    assert "a\tb\\x1b[31m&lt;b&gt;\n</pre>" in shown
