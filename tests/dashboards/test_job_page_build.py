"""The job page builds only the open tab's plots; the others on their first click.

A 128-node, 48-hour job has a spread and a heatmap per series: building every
tab's plots with the page took most of its build time
(``python -m benchmarks.dashboards --compress --job-only --profile``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import panel as pn
import polars as pl
import pytest
from bokeh.document import Document
from bokeh.models import Plot

from dashboards.pages import job as job_page
from dashboards.timeseries import EXTRA_SCHEMA
from hpcperfstats.hostdata.series import SERIES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """The labels of the series plotted so far (``series_plot`` calls, in order)."""
    calls: list[str] = []
    real = job_page.series_plot

    def counting(part, label, *args, **kwargs):
        calls.append(label)
        return real(part, label, *args, **kwargs)

    monkeypatch.setattr(job_page, "series_plot", counting)
    return calls


def named() -> pl.DataFrame:
    """Two hosts, ten samples of CPU (tab CPU) and of memory (tab Memory)."""
    times = [T0 + timedelta(minutes=5 * i) for i in range(10)]
    rows = [{"time": t, "host": h, "series": s, "value": float(i), "unit": u}
            for s, u in (("cpu_busy", "cores"), ("mem_used", "B"))
            for h in ("a", "b") for i, t in enumerate(times)]
    return pl.DataFrame(rows)


def test_only_the_open_tab_is_built_with_the_page(built):
    view = job_page.series_plots({"hosts": ["a", "b"], "nnodes": 2, "ncpus": 8}, named(),
                                 pl.DataFrame(schema=EXTRA_SCHEMA), first="Memory")
    tabs = view[1]
    assert len(tabs) == 2 and tabs.active == 1  # CPU, Memory; opened on Memory
    assert built == []  # nothing before the page is rendered
    view.server_doc(Document())
    memory, cpu = SERIES["mem_used"].label, SERIES["cpu_busy"].label
    assert built == [memory]  # the tab the page opens with, only
    tabs.active = 0  # the CPU tab's first click
    assert built == [memory, cpu]
    tabs.active = 1
    tabs.active = 0
    assert len(built) == 2  # each tab built once


def test_a_wide_job_draws_its_busy_cores_heatmap_once(built):
    """The per-node view's heatmap of busy cores is not drawn again in the CPU tab."""
    hosts = [f"w{i:02d}" for i in range(20)]  # wide: more than WIDE_HOSTS
    times = [T0 + timedelta(minutes=5 * i) for i in range(10)]
    wide = pl.DataFrame([{"time": t, "host": h, "series": "cpu_busy", "value": float(i % 4),
                          "unit": "cores"} for h in hosts for i, t in enumerate(times)])
    job = {"hosts": hosts, "nnodes": 20, "ncpus": 80}
    view = pn.Column(job_page.node_view(job, wide),
                     job_page.series_plots(job, wide, pl.DataFrame(schema=EXTRA_SCHEMA)))
    doc = Document()
    view.server_doc(doc)
    titles = [m.title.text for m in doc.models if isinstance(m, Plot) and m.title is not None]
    label = SERIES["cpu_busy"].label
    assert sorted(titles) == [label, f"{label}: per host"]  # the band, and one heatmap
