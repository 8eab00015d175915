"""The job page's verdict on the demo cluster's scripted jobs, as a person sees it.

The demo is loaded by the pipeline's own code (archive, host_data, job tables,
flags), so the numbers are the ones a site would see: the idle-nodes job runs
two of its four 16-core nodes flat out and leaves two idle.
"""

from __future__ import annotations

import psycopg
import pytest
from pagewatch import PageWatch

from dashboards.plots import ALLOCATED_LABEL, MEAN_LABEL
from hpcperfstats.hostdata.series import SERIES
from hpcperfstats.report.presentation import sbatch_text
from hpcperfstats.report.terminal import load_report

pytestmark = pytest.mark.browser

#: Cells and colour values of the per-host heatmap (QuadMesh/Image) as drawn.
HEATMAP_JS = """
title => {
  for (const doc of window.Bokeh.documents)
    for (const m of doc.all_models) {
      if (!m.title || m.title.text !== title || !m.renderers) continue;
      for (const r of m.renderers) {
        if (r.type !== 'GlyphRenderer' || r.glyph.type !== 'Quad') continue;
        const d = r.data_source.data;
        const skip = ['left', 'right', 'bottom', 'top', 'time', 'host index', 'host_index'];
        const key = Object.keys(d).find(k => !skip.includes(k));
        return {row: Array.from(d.bottom), value: Array.from(d[key])};
      }
    }
  return null;
}
"""


@pytest.fixture
def watch(browser, request):
    w = PageWatch(browser, getattr(request, "param", 3000))  # tall: plots in the screenshot
    yield w
    w.close()


def report(demo, jobid: str) -> dict:
    with psycopg.connect(demo.url) as conn:
        return load_report(conn, jobid)


def test_idle_nodes_job_verdict_sbatch_lines_and_heatmap_show_the_idle_nodes(
        demo_web, watch, screenshots):
    base, demo = demo_web
    job = demo.plan.by_behaviour("idle_nodes")[0]
    watch.open(f"{base}/job?jobid={job.jobid}")
    page = watch.page
    sentence = page.locator(".hp-sentence")
    sentence.wait_for(timeout=30_000)
    # by hand: 2 of 4 nodes x 16 cores busy = 32 of 64; the other 32 idle
    assert sentence.inner_text().startswith(
        "Used 32 of 64 cores; 32 of 64 requested cores idle; 2 of 4 nodes did no work; "
        "peak memory ")
    cli = report(demo, job.jobid)
    assert sentence.inner_text() == cli["verdict"]  # one presentation layer, same words
    sbatch = page.locator("pre.hp-sbatch").inner_text()
    assert "#SBATCH --nodes=2" in sbatch and "#SBATCH --ntasks=39" in sbatch  # ceil(32 x 1.2)
    assert sbatch.splitlines() == sbatch_text(cli["advice"])
    assert page.get_by_text("What to look at:").count() == 1
    # the per-node table marks exactly the nodes the plan left idle
    idle = sorted(h for h, busy in job.busy_cores.items() if busy == 0)
    assert len(idle) == 2
    marked = page.locator("tr.hp-idle-row")
    # the per-node view arrives after the verdict (pn.state.onload): wait for it
    marked.first.wait_for(timeout=60_000)
    assert sorted(marked.nth(i).get_attribute("data-host") for i in range(marked.count())) == idle
    assert page.get_by_text(f"2 of 4 node(s) idle: {', '.join(idle)}.", exact=False).count() == 1
    # a busy node's least busy moment is its 16 cores: no ramp from the idle interval
    # before the job (the rate sampled at its start), in the table or on the plots
    for host in sorted(set(job.hosts) - set(idle)):
        cells = page.locator(f"tr[data-host='{host}'] td")
        assert cells.nth(1).inner_text() == "16.00 cores", cells.all_inner_texts()
    # ...and so does the heatmap: the idle hosts' rows are ~0, the busy ones ~16 cores
    plots = watch.plots(2)
    title = next(t for t in plots if t.endswith(": per host"))
    heat = page.evaluate(HEATMAP_JS, title)
    assert heat and heat["value"], heat
    hosts = sorted(job.hosts)  # rows bottom-up in host order: row i spans [i - 0.5, i + 0.5]
    cells: dict[str, list[float]] = {h: [] for h in hosts}
    for row, value in zip(heat["row"], heat["value"], strict=True):
        if value == value:  # NaN: no sample in that cell
            cells[hosts[round(row + 0.5)]].append(value)
    means = {h: sum(v) / len(v) for h, v in cells.items() if v}
    assert all(means[h] < 0.5 for h in idle), means
    assert all(means[h] > 15 for h in hosts if h not in idle), means
    page.screenshot(path=str(screenshots / "job-verdict-idle-nodes.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_failed_job_has_the_red_banner(demo_web, watch, screenshots):
    base, demo = demo_web
    job = demo.plan.by_behaviour("failed")[0]
    watch.open(f"{base}/job?jobid={job.jobid}")
    banner = watch.page.locator(".hp-banner-bad")
    banner.wait_for(timeout=30_000)
    assert banner.inner_text() == "Failed: the job ended with exit code 1:0."
    colour = banner.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(192, 57, 43)"
    watch.page.screenshot(path=str(screenshots / "job-failed.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_memory_flagged_job_opens_on_the_memory_tab(demo_web, watch, screenshots):
    base, demo = demo_web
    job = demo.plan.by_behaviour("memory_heavy")[0]
    assert "memory_near_limit" in {f["flag"] for f in report(demo, job.jobid)["flags"]}
    watch.open(f"{base}/job?jobid={job.jobid}")
    plots = watch.plots(1)
    active = watch.page.locator(".bk-tab.bk-active")
    assert active.inner_text() == "Memory"
    assert any("memory" in t.lower() for t in plots), plots
    # the open tab draws every host's line, the job mean (several hosts) and the
    # allocation, each named in the legend
    memory = plots[SERIES["mem_used"].label]
    hosts = sorted(job.hosts)
    mean = [MEAN_LABEL] if len(hosts) > 1 else []
    assert memory["lines"] == len(hosts) + len(mean) + 1, memory
    assert memory["labels"] == sorted([*hosts, *mean, ALLOCATED_LABEL]), memory
    flags = watch.page.locator(".hp-flag")
    assert flags.first.inner_text().startswith("memory near limit")  # risks come first
    watch.page.screenshot(path=str(screenshots / "job-memory-flag.png"), full_page=True)
    assert watch.errors == [], watch.errors


#: Every table cell and header whose content is wider than its box (cut, ellipsis).
CUT_JS = """
() => {
  const roots = [document];
  for (let i = 0; i < roots.length; i++)
    for (const e of roots[i].querySelectorAll('*')) if (e.shadowRoot) roots.push(e.shadowRoot);
  const cells = roots.flatMap(r => [...r.querySelectorAll('.tabulator-cell, .tabulator-col-title')])
    .filter(c => c.offsetParent !== null && c.innerText.trim() !== '');
  return {checked: cells.length,
          cut: cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c =>
            (c.getAttribute('tabulator-field') || 'header') + ': ' + c.innerText
            + ' (' + c.scrollWidth + ' > ' + c.clientWidth + ')')};
}
"""


@pytest.mark.parametrize("watch", [1000], indirect=True)
def test_job_list_at_1400_px_cuts_no_column_and_puts_running_jobs_first(
        demo_web, watch, screenshots):
    base, demo = demo_web
    watch.open(f"{base}/jobs")
    page = watch.page
    rows = page.locator(".tabulator .tabulator-row")
    rows.first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    running = sum(1 for j in demo.plan.jobs if j.end is None)
    assert running >= 1
    ends = page.locator(".tabulator-cell[tabulator-field=end]")
    firsts = [ends.nth(i).inner_text().split("\n")[0] for i in range(running + 1)]
    assert firsts[:running] == ["running"] * running and firsts[running] != "running"
    assert page.locator("svg.hp-spark").count() >= 10  # finished jobs draw their CPU line
    assert page.locator(".hp-chip", has_text="idle nodes").count() >= 1
    # a table 1400 px wide with the filter sidebar open: every cell shows all it holds
    table = page.locator(".tabulator").first.bounding_box()
    assert table["x"] + table["width"] <= 1400
    page.screenshot(path=str(screenshots / "jobs-1400.png"), full_page=True)
    measured = page.evaluate(CUT_JS)
    assert measured["checked"] >= 10 * 10, measured  # 10 columns of at least 10 rows
    assert measured["cut"] == [], "\n".join(measured["cut"])
    # tick two jobs: a link compares them
    boxes = page.locator(".tabulator-row input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    link = page.locator("a.hp-compare")
    link.wait_for(timeout=10_000)
    ids = [rows.nth(i).locator("a").first.inner_text() for i in (0, 1)]
    assert link.inner_text() == "Compare selected (2)"
    assert link.get_attribute("href") == "compare?jobids=" + ",".join(ids)
    page.screenshot(path=str(screenshots / "jobs-1400.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_running_job_gets_provisional_metrics_from_the_same_functions(demo_web, watch):
    base, demo = demo_web
    job = next(j for j in demo.plan.jobs if j.end is None and j.nnodes >= 1
               and j.behaviour != "idle_nodes")
    from dashboards import data

    with psycopg.connect(demo.url) as conn:
        metrics = data.provisional_metrics(conn, job.jobid)
        stored = conn.execute("SELECT count(*) FROM job_metrics WHERE jobid = %s",
                              (job.jobid,)).fetchone()[0]
    assert stored == 0  # job_metrics is built when a job ends
    values = dict(zip(metrics["metric"], metrics["value"], strict=True))
    # the plan's ground truth: busy cores summed over the job's nodes over its cores
    expected = sum(job.busy_cores.values()) / job.ncpus
    assert values["cpu_efficiency"] == pytest.approx(expected, abs=0.01)
    assert values["mem_hwm_bytes"] == pytest.approx(max(job.mem_used_bytes.values()), rel=0.01)
    watch.open(f"{base}/job?jobid={job.jobid}")
    page = watch.page
    banner = page.locator(".hp-banner-info")
    banner.wait_for(timeout=30_000)
    assert banner.inner_text().startswith("Running: the numbers below are provisional")
    assert page.locator(".hp-sentence").inner_text().startswith("So far: used ")
    assert page.get_by_text("Metrics so far (provisional)").count() == 1
    assert page.get_by_text(f"{expected * 100:.1f} %", exact=True).count() >= 1
    assert watch.errors == [], watch.errors
