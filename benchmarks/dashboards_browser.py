"""Time to first meaningful content of every page in headless Chromium.

``python -m benchmarks.dashboards --browser`` loads the data of
``benchmarks.dashboards`` (one million jobs, one 128-node 48-hour job), serves
the dashboards on it (``python -m dashboards.serve``, a free loopback port,
``HPCPERF_AUTH=none``) and opens each page in Debian's Chromium through
Playwright: from the navigation to the first element a person reads (the
table's first row, the verdict, the first drawn plot), after one warm-up
visit; then each plot tab of the job page from its first click to its first
drawn plot. Goals: content < 2 s, each tab < 1 s.

``--src DIR`` (for example a ``git archive main`` copy) serves DIR's
dashboards beside this tree's over the same database and visits both
alternately, visit by visit, so a before/after comparison on a loaded
machine sees the same load; it prints both medians and their ratio, and the
load average before and after. ``--job-only`` visits the job page alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: Plot models drawn in the page's Bokeh documents (a tab's plots arrive on first open).
PLOT_COUNT_JS = """() => window.Bokeh ? [...window.Bokeh.documents].reduce((n, d) =>
    n + [...d.all_models].filter(m => m.renderers && m.title).length, 0) : 0"""


@contextmanager
def served(url: str, tree: Path = REPO) -> Iterator[str]:
    """The dashboards of source ``tree`` over ``url`` on a free loopback port; yields
    the base URL. The tree goes first on ``PYTHONPATH``, so another tree's code is
    served, not this checkout's installed one."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-web-") as home:
        log = Path(home) / "serve.log"
        env = dict(os.environ, HPCPERF_DATABASE_URL=url, HPCPERF_AUTH="none",
                   HPCPERF_WEB_PORT=str(port), HPCPERF_HOME=home,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(tree),
                                                            os.environ.get("PYTHONPATH")])))
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dashboards.serve"], cwd=tree,
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"panel serve did not start:\n{log.read_text()}")
                try:
                    with urllib.request.urlopen(f"{base}/jobs", timeout=60):
                        break
                except OSError:
                    time.sleep(0.5)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def pages(job: dict[str, datetime]) -> list[tuple[str, str, str]]:
    """(name, address, the selector of the first meaningful content)."""
    span = f"start={job['start']:%Y-%m-%dT%H:%MZ}&end={job['end']:%Y-%m-%dT%H:%MZ}"
    day = f"{job['end']:%Y-%m-%d}"
    plot = "canvas"
    return [
        ("overview (the big job's 48 h)", f"overview?{span}", plot),
        ("jobs list, 1,000,000 jobs", "jobs", ".tabulator-row"),
        ("job page, 128 nodes x 48 h: verdict", "job?jobid=9999999", ".hp-sentence"),
        ("job page, 128 nodes x 48 h: first plot", "job?jobid=9999999", plot),
        ("host page, one of its nodes, 48 h", f"host?host=b0000&{span}", plot),
        ("user page, user0001, 30 days", f"user?user=user0001&end={day}", ".tabulator-row"),
        ("account page, proj-001, 30 days", f"user?account=proj-001&end={day}",
         ".tabulator-row"),
        ("users page, everyone's 30 days (staff)", f"user?end={day}", "table.hp-breakdown"),
        ("compare, the big job and two others",
         "compare?jobids=9999999,1000000,1000001", plot),
        ("applications, 30 days", f"applications?end={day}", "h2"),
    ]


def _visit(page, base: str, path: str, selector: str) -> float:
    t0 = time.perf_counter()
    page.goto(f"{base}/{path}", wait_until="commit")
    page.locator(selector).first.wait_for(state="visible", timeout=120_000)
    return time.perf_counter() - t0


def _tabs(page, base: str) -> list[tuple[str, float]]:
    """Each plot tab of the big job's page, first click to first drawn plot."""
    page.goto(f"{base}/job?jobid=9999999", wait_until="commit")
    page.locator("canvas").first.wait_for(timeout=120_000)
    page.wait_for_timeout(500)
    out = []
    tabs = page.locator(".bk-tab")
    names = tabs.all_inner_texts()
    for i, name in enumerate(names):
        if "bk-active" in (tabs.nth(i).get_attribute("class") or ""):
            continue
        before = page.evaluate(PLOT_COUNT_JS)
        t0 = time.perf_counter()
        tabs.nth(i).click()
        page.wait_for_function(f"() => ({PLOT_COUNT_JS})() > {before}", timeout=120_000)
        out.append((name, time.perf_counter() - t0))
    return out


def _cell(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:7.0f}ms ({max(times) * 1000:5.0f})"


def browser_table(url: str, job: dict[str, datetime], repeat: int, src: Path | None = None,
                  job_only: bool = False) -> None:
    """Print the Chromium timings: median and worst of ``repeat`` warm visits per page
    (and per job-page tab), for this tree and, with ``src``, for that tree too, visited
    alternately; then the after/before ratio of the medians."""
    from playwright.sync_api import sync_playwright

    trees = [("this tree", REPO)] + ([(f"--src {src}", Path(src))] if src else [])
    rows = [r for r in pages(job) if not job_only or r[0].startswith("job page")]
    runs: dict[tuple[str, str], list[float]] = {}
    with ExitStack() as stack, sync_playwright() as pw:
        bases = {name: stack.enter_context(served(url, tree)) for name, tree in trees}
        chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-gpu"])
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        print(f"\nChromium, load average {os.getloadavg()[0]:.1f}", flush=True)
        for name, path, selector in rows:
            for base in bases.values():
                _visit(page, base, path, selector)  # warm-up
            for _ in range(repeat):
                for tree, base in bases.items():
                    runs.setdefault((tree, name), []).append(_visit(page, base, path, selector))
        for base in bases.values():
            _tabs(page, base)  # warm-up
        for _ in range(repeat):
            for tree, base in bases.items():
                for name, seconds in _tabs(page, base):
                    key = (tree, f"  job page tab {name}, first click")
                    runs.setdefault(key, []).append(seconds)
        chromium.close()
    names = list(dict.fromkeys(name for _, name in runs))
    heads = "".join(f"{t[:22]:>24s}" for t in bases) + ("   ratio" if src else "")
    print(f"\n{'page in Chromium (first meaningful content), median (max)':64s}{heads}")
    for name in names:
        cells = [runs.get((tree, name)) for tree in bases]
        line = "".join(f"{_cell(c) if c else '—':>24s}" for c in cells)
        if src and all(cells):
            ratio = statistics.median(cells[0]) / statistics.median(cells[1])
            line += f"{ratio:8.2f}"
        print(f"{name:64s}{line}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
