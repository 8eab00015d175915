"""Roofline, footprint and "What ran" on the job page of the demo cluster, as a person sees them.

The compute-bound demo job runs on the nodes with hardware counters: 16 busy
cores x 8 GFLOP/s and 16 x 1 GB/s + 40 MB/s of OS traffic per node, on
nodes of 1.28 TFLOP/s and 200 GB/s (the demo's peaks). The half-cores job's
nodes have no counters. Numbers below are worked out from those.
"""

from __future__ import annotations

import psycopg
import pytest
from pagewatch import PageWatch

pytestmark = pytest.mark.browser

#: the job's point on the roofline (the GlyphRenderer named "job"), as drawn
POINT_JS = """
() => {
  for (const doc of window.Bokeh.documents)
    for (const m of doc.all_models)
      if (m.type === 'GlyphRenderer' && m.name === 'job') {
        const d = m.data_source.data;
        return {x: Array.from(d.x), y: Array.from(d.y)};
      }
  return null;
}
"""


@pytest.fixture
def watch(browser):
    w = PageWatch(browser, 2600)
    yield w
    w.close()


def test_compute_bound_job_roofline_footprint_and_what_ran(demo_web, watch, screenshots):
    base, demo = demo_web
    job = demo.plan.by_behaviour("cpu_bound")[0]
    watch.open(f"{base}/job?jobid={job.jobid}")
    page = watch.page
    numbers = page.locator("table.hp-roofline")
    numbers.wait_for(timeout=60_000)
    cells = dict(zip(numbers.locator("th").all_inner_texts(),
                     numbers.locator("td").all_inner_texts(), strict=True))
    # by hand: 16 x 8e9 = 1.28e11 FLOP/s; 16 x 1e9 + 4e7 = 1.604e10 B/s (16.0 GB/s);
    # 1.28e11 / 1.604e10 = 7.98 FLOP/B, right of the ridge 1.28e12 / 2e11 = 6.4
    assert cells["FLOPS per node"] == "128.0 GFLOP/s"
    assert cells["Memory bandwidth per node"] == "16.0 GB/s"
    assert cells["Arithmetic intensity"] == "7.98 FLOP/B"
    assert cells["Roof at this intensity"] == "1.3 TFLOP/s"
    assert cells["Reached"] == "10.0% of the roof"  # 1.28e11 / 1.28e12
    assert cells["Limited by"].startswith("the cores' FLOP rate")
    assert page.locator("table.hp-roofline-nodes tr[data-host]").count() == 2
    point = page.wait_for_function(POINT_JS, timeout=30_000).json_value()
    assert point["x"][0] == pytest.approx(1.28e11 / 1.604e10, rel=1e-6)
    assert point["y"][0] == pytest.approx(1.28e11, rel=1e-6)
    # footprint: one row per metric with a value; CPU efficiency 100 %, placed
    rows = page.locator(".hp-fp-row")
    metrics = [rows.nth(i).get_attribute("data-metric") for i in range(rows.count())]
    assert metrics[:2] == ["cpu_efficiency", "mem_hwm_fraction"]
    assert {"flops_avg", "mem_bw_avg", "ib_bw_avg"} <= set(metrics)
    eff = page.locator(".hp-fp-row[data-metric='cpu_efficiency']")
    assert eff.locator(".hp-fp-value b").inner_text() == "100.0 %"
    with psycopg.connect(demo.url) as conn:  # the pool: normal jobs ended by this one's end
        pool = conn.execute(
            "SELECT count(*), count(DISTINCT username) FROM job_data j JOIN job_metrics m "
            "USING (jobid) WHERE m.metric = 'cpu_efficiency' AND m.value IS NOT NULL AND "
            "j.partition = 'normal' AND j.end_time <= %s", (job.end,)).fetchone()
    assert f"of {pool[0]} jobs of {pool[1]} users" in eff.inner_text()
    flops = page.locator(".hp-fp-row[data-metric='flops_avg']").inner_text()
    assert "above 50% of 1 job of 1 user" in flops  # the only normal job with counters yet
    # what ran: the application, its ranks' process name, the batch script, the job script
    apps = page.locator("table.hp-facts", has_text="Application").first.inner_text()
    assert "wrf" in apps
    procs = page.locator("table.hp-procs").inner_text()
    assert "wrf.exe\t8" in procs  # 4 ranks on each of 2 nodes
    # the job script the demo stored (hpcperf-sacct-dump --scripts at a real site)
    script = page.locator("pre.hp-script").inner_text()
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=16\n" in script
    assert script.endswith("module load wrf\nsrun wrf.exe\n")
    page.locator("table.hp-procs").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "job-what-ran.png"), full_page=True)
    page.locator(".hp-footprint").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "job-roofline-footprint.png"), full_page=True)
    assert watch.errors == [], watch.errors


def test_job_without_counters_says_why_there_is_no_roofline(demo_web, watch):
    base, demo = demo_web
    job = demo.plan.by_behaviour("half_cores")[0]
    watch.open(f"{base}/job?jobid={job.jobid}")
    why = watch.page.locator(".hp-no-roofline")
    why.wait_for(timeout=60_000)
    assert why.inner_text().startswith(
        "No roofline: the job's nodes reported no hardware performance counters (PMU) and "
        "no memory-controller counters")
    assert watch.page.locator(".hp-fp-row[data-metric='flops_avg']").count() == 0
    assert watch.errors == [], watch.errors
