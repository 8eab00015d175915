"""The demo's GPU training job on its page, in Chromium: GPU metrics, GPU-hours, the
GPU tab with one line per GPU, and the job script the demo stored.

Worked out from the plan: 4 GPUs x 6 h = 24 GPU-hours; (92 + 88 + 95 + 85) % over
4 GPUs = 90 % busy; 60 + 58 + 62 + 56 = 236 GiB in use on the node.
"""

from __future__ import annotations

import pytest
from hpcperf_demo.generate import job_script
from pagewatch import PageWatch

from dashboards.units import metric_text

pytestmark = pytest.mark.browser
GiB = 2**30


@pytest.fixture
def watch(browser):
    w = PageWatch(browser, 4400)  # tall: every plot of the GPU tab in the screenshot
    yield w
    w.close()


def _row(page, label: str) -> str:
    return page.locator("table.hp-facts tr", has=page.locator(f"th:text-is('{label}')")
                        ).first.inner_text()


def test_gpu_training_job_shows_its_gpus(demo_web, watch, screenshots):
    base, demo = demo_web
    (job,) = demo.plan.by_behaviour("gpu_training")
    watch.open(f"{base}/job?jobid={job.jobid}")
    page = watch.page
    page.locator("table.hp-facts").first.wait_for(timeout=60_000)
    assert _row(page, "GPUs").endswith("4")
    assert _row(page, "GPU-hours").endswith("24.0")
    assert metric_text("gpu_util", 0.9, "1") in _row(page, "GPU utilisation")
    assert metric_text("gpu_mem_hwm_bytes", 236 * GiB, "B") in _row(
        page, "GPU memory high-water mark per node")
    assert page.locator(".hp-flag").count() == 0  # busy GPUs: no flag
    # the GPU tab: the node's sums and each GPU's own line
    page.locator(".bk-tab", has_text="GPU").first.click()
    plots = watch.plots_with("GPU utilisation, each GPU", timeout=60_000)
    gpus = [f"g001-001 GPU {i}" for i in range(4)]
    each = plots["GPU utilisation, each GPU"]
    assert [label for label in each["labels"] if label.startswith("g001")] == gpus
    assert each["lines"] >= 4
    assert set(gpus) <= set(plots["GPU memory used, each GPU"]["labels"])
    assert set(gpus) <= set(plots["GPU power, each GPU"]["labels"])
    assert any(t.startswith("GPU utilisation, summed") for t in plots)
    # GPU memory is not measured against the node memory requested: no allocation line
    assert "allocated per node" not in plots["GPU memory used"]["labels"]
    # what ran: the script the demo stored, its #SBATCH lines as submitted
    script = page.locator("pre.hp-script").inner_text()
    assert script.strip() == job_script(job, demo.plan.jobs.index(job)).strip()
    assert "#SBATCH --gres=gpu:h100:4" in script
    page.locator(".bk-tab", has_text="GPU").first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "job-gpu-tab.png"), full_page=True)
    assert watch.errors == [] and watch.dialogs == [], watch.errors


def test_idle_gpu_job_is_flagged_on_its_page(demo_web, watch):
    base, demo = demo_web
    (job,) = demo.plan.by_behaviour("gpu_idle")
    watch.open(f"{base}/job?jobid={job.jobid}")
    flag = watch.page.locator(".hp-flag").first
    flag.wait_for(timeout=60_000)
    assert "gpus idle" in flag.inner_text().lower()
    assert "Your GPUs were busy 1% of the time" in flag.inner_text()
    assert watch.errors == [], watch.errors
