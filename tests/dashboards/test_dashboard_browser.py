"""The dashboards as a person sees them: real server, real database, real Chromium."""

from __future__ import annotations

import pytest
from dashboard_dataset import EVIL_NAME, HOSTS

from hpcperfstats.series import SERIES

pytestmark = pytest.mark.browser

# What the Bokeh documents in the page hold: per plot, its title, size and
# the hosts of its line renderers (HoloViews names each line's legend entry).
PLOTS_JS = """
() => {
  const plots = [];
  for (const doc of window.Bokeh.documents) {
    for (const m of doc.all_models) {
      if (!m.renderers || !m.title || m.title.text === undefined) continue;
      const lines = m.renderers.filter(r => r.type === 'GlyphRenderer' && r.glyph.type === 'Line');
      const labels = [];
      for (const l of [...m.center, ...m.right].filter(x => x.type === 'Legend'))
        for (const item of l.items) labels.push(item.label && item.label.value);
      plots.push({title: m.title.text, lines: lines.length, labels: labels.sort()});
    }
  }
  return plots;
}
"""


class PageWatch:
    """A page that records console errors, uncaught exceptions and dialogs."""

    def __init__(self, browser, height: int = 1000):
        self.context = browser.new_context(viewport={"width": 1400, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="networkidle")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watch(browser, request):
    w = PageWatch(browser, getattr(request, "param", 1000))
    yield w
    w.close()


def test_job_list_shows_jobs_and_escapes_names(web, watch, screenshots):
    watch.open(f"{web}/jobs")
    page = watch.page
    table = page.locator(".tabulator")
    table.locator(".tabulator-row").first.wait_for(timeout=30_000)
    assert table.locator(".tabulator-row").count() == 2
    assert table.locator(".tabulator-cell", has_text="cfd-run").count() == 1
    # The script tag is shown as its own text, never run as code
    evil = table.locator(".tabulator-cell[tabulator-field=name]", has_text=EVIL_NAME)
    assert evil.count() == 1 and evil.inner_text() == EVIL_NAME
    page.wait_for_timeout(300)
    assert watch.dialogs == []
    link = table.locator("a", has_text="1001")
    assert link.get_attribute("href") == "job?jobid=1001"
    assert page.get_by_text("of 2", exact=False).count() >= 1
    page.screenshot(path=str(screenshots / "jobs.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_job_list_filter_by_state(web, watch):
    watch.open(f"{web}/jobs?state=FAILED")
    rows = watch.page.locator(".tabulator .tabulator-row")
    rows.first.wait_for(timeout=30_000)
    assert rows.count() == 1 and "bob" in rows.first.inner_text()


@pytest.mark.parametrize("watch", [1700], indirect=True)  # tall: every plot in the screenshot
def test_job_link_opens_detail_with_plots_per_host(web, watch, screenshots):
    watch.open(f"{web}/jobs")
    page = watch.page
    page.locator(".tabulator a", has_text="1001").click()
    page.wait_for_url("**/job?jobid=1001")
    page.wait_for_load_state("networkidle")
    page.get_by_text("cfd-run").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('*')].some(e => e.shadowRoot)", timeout=30_000
    )
    canvases = page.locator("canvas")
    canvases.first.wait_for(timeout=30_000)
    sizes = [c.bounding_box() for c in canvases.all()]
    assert any(b and b["width"] > 300 and b["height"] > 150 for b in sizes), sizes
    plots = page.evaluate(PLOTS_JS)
    by_title = {p["title"]: p for p in plots}
    titles = [SERIES[name].label for name in ("cpu_busy", "mem_used", "net_bw")]
    assert set(titles) <= set(by_title), plots
    for title in titles:
        assert by_title[title]["lines"] == len(HOSTS)
        assert by_title[title]["labels"] == HOSTS
    # Accounting and metrics in human units, next to what was allocated
    for text in ("alice", "proj-cfd", "76.6 %", "41.5 GiB", "of 128.0 GiB requested",
                 "24.50 cores", "of 32 allocated per node", "125.0 MB/s", "55m 00s"):
        assert page.get_by_text(text, exact=True).count() == 1, text
    page.screenshot(path=str(screenshots / "job.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_job_detail_escapes_name_and_shows_missing_reason(web, watch, screenshots):
    watch.open(f"{web}/job?jobid=1002")
    page = watch.page
    page.get_by_text(EVIL_NAME).first.wait_for(timeout=30_000)
    page.get_by_text("not available: job too short").wait_for(timeout=10_000)
    page.wait_for_timeout(300)
    assert watch.dialogs == []
    page.screenshot(path=str(screenshots / "job-escaped.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_unknown_job_says_not_found(web, watch, screenshots):
    watch.open(f"{web}/job?jobid=<b>999</b>")
    page = watch.page
    message = page.get_by_text("Job <b>999</b> not found.")
    message.wait_for(timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
    page.screenshot(path=str(screenshots / "job-not-found.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_index_serves_the_job_list(web, watch):
    watch.open(f"{web}/")
    watch.page.locator(".tabulator .tabulator-row").first.wait_for(timeout=30_000)
    assert watch.page.locator("nav a", has_text="Jobs").get_attribute("href") == "jobs"
