"""The dashboards as a person sees them: real server, real database, real Chromium.

This server runs with ``HPCPERF_AUTH=none``: everyone is staff (the demo's setting).
"""

from __future__ import annotations

import pytest
from bokeh_client import page_document
from dashboard_dataset import EVIL_NAME, HOSTS
from pagewatch import PageWatch
from playwright.sync_api import expect

from hpcperfstats.hostdata.series import CGROUP_SERIES, SERIES

pytestmark = pytest.mark.browser


@pytest.fixture
def watch(browser, request):
    w = PageWatch(browser, getattr(request, "param", 1000))
    yield w
    w.close()


def _seconds(text: str) -> int:
    """``272d 00h 23m ago`` -> seconds (the freshness table's ages)."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in text.replace(" ago", "").split())


def rows(page):
    table = page.locator(".tabulator")
    table.locator(".tabulator-row").first.wait_for(timeout=30_000)
    return table.locator(".tabulator-row")


def test_job_search_shows_jobs_escapes_names_and_says_everyone_is_staff(web, watch, screenshots):
    watch.open(f"{web}/jobs")
    page = watch.page
    assert rows(page).count() == 3
    assert page.locator(".tabulator-cell", has_text="cfd-run").count() == 1
    # The script tag is shown as its own text, never run as code
    evil = page.locator(".tabulator-cell[tabulator-field=name]", has_text=EVIL_NAME)
    assert evil.count() == 1 and evil.inner_text() == EVIL_NAME
    page.wait_for_timeout(300)
    assert watch.dialogs == []
    assert page.locator(".tabulator a", has_text="1001").get_attribute("href") == "job?jobid=1001"
    assert page.get_by_text("of 3", exact=False).count() >= 1
    assert page.get_by_text("everyone is staff", exact=False).count() == 1
    page.screenshot(path=str(screenshots / "jobs.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_search_filters_from_url_and_widgets_and_csv_export(web, watch, tmp_path):
    watch.open(f"{web}/jobs?state=FAILED")
    page = watch.page
    assert rows(page).count() == 1 and "bob" in rows(page).first.inner_text()
    watch.open(f"{web}/jobs")
    rows(page)
    name = page.get_by_label("Job name contains")
    name.fill("sweep")
    name.press("Enter")
    expect(page.locator(".tabulator .tabulator-row")).to_have_count(1, timeout=30_000)
    assert "wide-sweep" in rows(page).first.inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    path = tmp_path / "jobs.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("jobid,") and len(lines) == 2 and lines[1].startswith("1003,")
    assert watch.errors == [], watch.errors


@pytest.mark.parametrize("watch", [2400], indirect=True)  # tall: plots in the screenshot
def test_job_detail_metrics_coverage_and_plots_per_host(web, watch, screenshots):
    watch.open(f"{web}/jobs")
    page = watch.page
    page.locator(".tabulator a", has_text="1001").click()
    page.wait_for_url("**/job?jobid=1001")
    plots = watch.plots(2)  # the CPU tab: the job's cgroup and the node counters
    own = CGROUP_SERIES["cg_cpu"].label  # and the per-node heatmap of the job's own cores
    assert set(plots) == {SERIES["cpu_busy"].label, own, f"{own}: per host"}, plots
    for tab, first in (("Memory", SERIES["mem_used"].label), ("Network", SERIES["net_bw"].label),
                       ("Other", "NUMA accesses: ")):
        page.locator(".bk-tab", has_text=tab).click()  # tabs render when first opened
        plots |= watch.plots_with(first)
    page.locator(".bk-tab", has_text="CPU").click()
    for name in ("cpu_busy", "mem_used", "net_bw", "ib_bw"):
        plot = plots[SERIES[name].label]
        # each host and the job mean; the allocation (cores, memory) named in the legend
        allocated = ["allocated per node"] if name in ("cpu_busy", "mem_used") else []
        assert plot["lines"] == len(HOSTS) + 1 + len(allocated), plot
        assert plot["labels"] == sorted([*HOSTS, "job mean", *allocated])
    assert plots[CGROUP_SERIES["cg_cpu"].label]["lines"] == len(HOSTS) + 2
    assert any(t.startswith("NUMA accesses: ") for t in plots), plots  # a type no series names
    sizes = [c.bounding_box() for c in page.locator("canvas").all()]
    assert any(b and b["width"] > 300 and b["height"] > 150 for b in sizes), sizes
    # Accounting and metrics in human units, next to what was allocated (in their
    # tables: the footprint shows some of the values again)
    facts = page.locator("table.hp-facts")
    for text in ("alice", "proj-cfd", "76.6 %", "41.5 GiB", "of 64.0 GiB requested per node",
                 "24.50 cores", "of 32 allocated per node", "125.0 MB/s", "55m 00s"):
        assert facts.get_by_text(text, exact=True).count() == 1, text
    assert page.get_by_text("Hosts with gaps: c002 (83.3 %)").count() == 1
    assert page.get_by_text("CPU efficiency: cgroup", exact=False).count() == 1
    assert page.locator("a", has_text="c002").first.get_attribute("href").startswith(
        "host?host=c002&start=")
    page.screenshot(path=str(screenshots / "job.png"), full_page=True)
    assert watch.errors == [], watch.errors


@pytest.mark.parametrize("watch", [1800], indirect=True)
def test_wide_job_draws_mean_band_and_heatmap(web, watch, screenshots):
    watch.open(f"{web}/job?jobid=1003")
    plots = watch.plots(2)
    label = SERIES["cpu_busy"].label
    assert label in plots, plots
    assert "Patch" in plots[label]["glyphs"] and plots[label]["lines"] >= 1
    heat = plots[f"{label}: per host"]
    assert heat["glyphs"] and heat["lines"] == 0, heat
    page = watch.page
    assert page.locator(".hp-loading").count() == 0  # the plots replaced the note
    assert page.get_by_text("low cpu efficiency", exact=False).count() == 1
    assert page.get_by_text("Request fewer cores", exact=False).count() == 1
    page.screenshot(path=str(screenshots / "job-wide.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_the_job_pages_first_document_is_the_verdict_without_plots(web):
    """What the server sends before the browser says it has drawn the page: the
    verdict, facts and metrics, and a note; the heatmap, footprint, roofline and
    plots (hundreds of models for a wide job) come after (``pn.state.onload``),
    so Chromium shows the verdict without waiting for them."""
    status, doc = page_document(web, "job?jobid=1003", {})
    assert status == 101
    assert "hp-sentence" in doc and "Request fewer cores" in doc
    assert "Loading the per-node view and the plots" in doc
    assert '"name":"Figure"' not in doc and "hp-footprint" not in doc, doc[:2000]


def test_the_user_pages_first_document_is_the_summary_without_jobs(web):
    """The users page sends its totals and breakdowns first and reads the page of
    jobs once the browser has drawn them (``pn.state.onload``): the first document
    has the breakdown and says the jobs are loading, and holds no job row yet (so
    its table can never say "No jobs match" before the jobs were read)."""
    status, doc = page_document(web, "user?start=2026-03-01&end=2026-03-01", {})
    assert status == 101
    assert "hp-breakdown" in doc and "Top wasted core-hours" in doc
    assert "Loading the jobs" in doc
    assert "Jobs **" not in doc, doc[:2000]


def test_job_detail_escapes_name_flag_and_shows_missing_reason(web, watch, screenshots):
    watch.open(f"{web}/job?jobid=1002")
    page = watch.page
    page.get_by_text(EVIL_NAME).first.wait_for(timeout=30_000)
    page.get_by_text("No value: CPU efficiency — job too short.").wait_for(timeout=10_000)
    assert page.get_by_text("Failed: the job ended with exit code", exact=False).count() == 1
    page.get_by_text("Memory <b>reached</b> 95% of a node.").wait_for(timeout=10_000)
    page.wait_for_timeout(300)
    assert watch.dialogs == []
    page.screenshot(path=str(screenshots / "job-escaped.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_unknown_job_says_not_found(web, watch, screenshots):
    watch.open(f"{web}/job?jobid=<b>999</b>")
    page = watch.page
    page.get_by_text("Job <b>999</b> not found.").wait_for(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(screenshots / "job-not-found.png"), full_page=True)
    assert watch.errors == [], watch.errors


@pytest.mark.parametrize("watch", [1400], indirect=True)
def test_overview_tiles_use_flagged_and_freshness(web, watch, screenshots):
    watch.open(f"{web}/overview")
    plots = watch.plots(3)
    assert f"{SERIES['cpu_busy'].label}, cluster total" in plots
    page = watch.page
    assert page.get_by_text("nodes reporting").count() == 1
    assert page.get_by_text("jobs finished in range").count() == 1
    assert page.locator("a", has_text="1003").count() >= 1  # most flagged
    assert page.locator("a", has_text="w007").count() == 1  # freshness lists every host
    # raw types in words and units a person reads: no "numa: local_node", no "1/s"
    assert "NUMA accesses: local node, cluster total" in plots, plots
    axis = page.evaluate("""() => [...window.Bokeh.documents].flatMap(d => [...d.all_models])
        .filter(m => m.type === 'LinearAxis' && m.axis_label).map(m => m.axis_label)""")
    assert "/s" in axis and "1/s" not in axis, axis
    # freshness: stalest host first (c001's last sample is the oldest)
    ages = page.locator("td", has_text=" ago").all_inner_texts()
    assert ages and ages == sorted(ages, key=lambda a: _seconds(a), reverse=True), ages
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    assert watch.errors == [], watch.errors


@pytest.mark.parametrize("watch", [1600], indirect=True)
def test_host_view_with_job_bands(web, watch, screenshots):
    watch.open(f"{web}/host?host=c002&start=2026-03-01T09:30:00Z&end=2026-03-01T12:30:00Z")
    plots = watch.plots(1)
    assert SERIES["cpu_busy"].label in plots
    assert SERIES["mem_used"].label not in plots  # the Memory tab renders when opened
    page = watch.page
    assert page.locator("a", has_text="1001").count() == 1
    assert page.locator("a", has_text="1002").count() == 1
    assert page.get_by_text("Jobs (2)").count() == 1
    tabs = page.locator(".bk-tab").all_inner_texts()
    assert tabs[:3] == ["CPU", "Memory", "Network"] and tabs[-1] == "Other", tabs
    # each band is labelled with its job id and user (Text glyphs on the plot)
    assert plots[SERIES["cpu_busy"].label]["glyphs"].count("Text") == 2, plots
    page.locator(".bk-tab", has_text="Memory").click()
    plots = watch.plots_with(SERIES["mem_used"].label)
    assert plots[SERIES["mem_used"].label]["glyphs"].count("Text") == 2, plots
    page.screenshot(path=str(screenshots / "host.png"), full_page=True)
    assert watch.errors == [], watch.errors


#: The search page's filter labels: the user and account pages show the same widgets.
SEARCH_LABELS = ("User", "Account", "Job name contains", "Partition", "State",
                 "Ran after (UTC)", "Ran before (UTC)", "Metric", "Flag", "Application")


def test_user_and_account_pages(web, watch, screenshots):
    # both of alice's jobs ran on 2026-03-01: a "to" date of that day keeps them
    watch.open(f"{web}/user?user=alice&start=2026-03-01&end=2026-03-01")
    page = watch.page
    assert sorted(rows(page).locator("[tabulator-field=jobid]").all_inner_texts()) == [
        "1001", "1003"]
    for label in SEARCH_LABELS:
        assert page.get_by_text(label, exact=True).count() >= 1, label
    tiles = page.locator(".hp-tile").all_inner_texts()
    # core-hours 3300 s x (64 + 640) cores = 645; wasted 58.7 x 23.4 % + 586.7 x 69 % = 419
    assert "645\ncore-hours" in tiles and "419\nwasted core-hours" in tiles, tiles
    assert page.get_by_text("low_cpu_efficiency (1)", exact=False).count() == 1
    page.screenshot(path=str(screenshots / "user.png"), full_page=True)
    # an account: the per-user breakdown
    watch.open(f"{web}/user?account=proj-cfd&start=2026-03-01&end=2026-03-01")
    breakdown = page.locator("table.hp-breakdown")
    breakdown.first.wait_for(timeout=30_000)
    # one user in the account: no ranking of wasters next to it
    assert page.locator("table.hp-breakdown caption").all_inner_texts() == ["Per user"]
    assert "alice\t2\t0\t645\t419\t35.1 %" in breakdown.first.inner_text()
    page.screenshot(path=str(screenshots / "account.png"), full_page=True)
    # staff, everyone's jobs: top users by core-hours and top wasted core-hours
    watch.open(f"{web}/user?start=2026-03-01&end=2026-03-01")
    page.get_by_text("Top wasted core-hours").wait_for(timeout=30_000)
    tops = page.locator("table.hp-breakdown")
    assert page.locator("table.hp-breakdown caption").all_inner_texts() == [
        "Top users by core-hours", "Top wasted core-hours"]
    wasted = tops.nth(1).locator("tr").all_inner_texts()
    assert wasted[1].startswith("alice\t2\t0\t645\t419") and wasted[2].startswith(
        "bob\t1\t1\t29\t0"), wasted
    assert rows(page).count() == 3
    page.screenshot(path=str(screenshots / "user-staff-top.png"), full_page=True)
    # the day before the jobs ran: nothing
    watch.open(f"{web}/user?user=alice&start=2026-02-01&end=2026-02-28")
    page.get_by_text("No jobs match these filters").wait_for(timeout=30_000)
    assert watch.errors == [], watch.errors


@pytest.mark.parametrize("watch", [1400], indirect=True)
def test_compare_side_by_side(web, watch, screenshots):
    watch.open(f"{web}/compare?jobids=1001,1003,nope")
    plots = watch.plots(1)
    curves = plots[f"{SERIES['cpu_busy'].label} (mean over hosts)"]
    assert curves["labels"] == ["job 1001", "job 1003"]
    page = watch.page
    assert page.get_by_text("Not found: nope").count() == 1
    assert page.get_by_text("31.0 %", exact=True).count() == 1
    # CPU efficiency (higher is better): 1001's 76.6 % best, 1003's 31.0 % worst
    assert page.locator("td.hp-best").all_inner_texts() == ["76.6 %"]
    assert page.locator("td.hp-worst").all_inner_texts() == ["31.0 %"]
    page.screenshot(path=str(screenshots / "compare.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_application_summary_and_a_jobs_applications(web, watch, screenshots):
    watch.open(f"{web}/applications?start=2026-02-01&end=2026-03-31")
    page = watch.page
    page.get_by_text("fluid dynamics").wait_for(timeout=30_000)
    assert page.get_by_text("639", exact=True).count() == 1  # OpenFOAM core-hours (by hand)
    assert page.get_by_text("54%", exact=True).count() == 1  # median of 76.6 % and 31 %
    assert page.locator("a", has_text="OpenFOAM").get_attribute("href") == (
        "jobs?application=OpenFOAM")
    page.screenshot(path=str(screenshots / "applications.png"), full_page=True)
    watch.open(f"{web}/job?jobid=1002")
    apps = page.locator("table.hp-facts", has_text="Executables")  # What ran: applications
    apps.get_by_text("/home/bob/bin/train").wait_for(timeout=30_000)
    assert apps.get_by_text("70%", exact=True).count() == 1  # Python's share
    # ...its process names, and for staff the executable no rule names
    assert "python3.11\t" in page.locator("table.hp-procs").inner_text()
    assert page.locator("ul.hp-unknown").inner_text() == "/home/bob/bin/train"
    assert page.get_by_text("Share of the job's CPU time.").count() == 1
    watch.open(f"{web}/jobs?application=Python")
    assert rows(page).all_inner_texts()[0].startswith("1002")
    assert rows(page).count() == 1
    assert watch.errors == [], watch.errors


def test_index_serves_the_job_list(web, watch):
    watch.open(f"{web}/")
    rows(watch.page)
    assert watch.page.locator("nav a", has_text="Jobs").get_attribute("href") == "jobs"
