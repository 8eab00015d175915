"""``/jobs``: recent jobs, filtered by user and state, paged and sorted in SQL.

Tabulator gets only the current page; header clicks come back as
``sorters`` and re-run the query, so sorting covers every job, not just the
rows on screen. Job ids link to the job's detail page.
"""

from __future__ import annotations

from urllib.parse import quote

import panel as pn
import polars as pl
from bokeh.models.widgets.tables import NumberFormatter

from dashboards import data
from dashboards.layout import page, query_arg

ALL_STATES = "all states"
PAGE_SIZES = [25, 50, 100, 200]

TITLES = {
    "jobid": "Job", "user": "User", "account": "Account", "partition": "Partition",
    "name": "Name", "state": "State", "start": "Start (UTC)", "end": "End (UTC)",
    "nodes": "Nodes", "cpu_eff": "CPU efficiency %",
}

FORMATTERS = {
    "jobid": {"type": "link", "urlField": "link", "target": "_self"},
    "cpu_eff": {
        "type": "progress", "min": 0, "max": 100, "legend": True,
        "color": ["#c0392b", "#e67e22", "#27ae60"], "legendColor": "#000000",
    },
    "nodes": NumberFormatter(format="0"),
}


def table_frame(jobs: pl.DataFrame):
    """The page frame as Tabulator shows it: readable times, percent, link column."""
    shown = jobs.with_columns(
        pl.col("start").dt.strftime("%Y-%m-%d %H:%M"),
        pl.col("end").dt.strftime("%Y-%m-%d %H:%M"),
        (pl.col("cpu_eff") * 100).round(1),
        pl.col("jobid").map_elements(lambda j: "job?jobid=" + quote(j, safe=""),
                                     return_dtype=pl.Utf8).alias("link"),
    )
    return shown.to_pandas()


class JobList:
    """Filter widgets, pager and table of one browser session."""

    def __init__(self) -> None:
        with data.connection() as conn:
            states = data.job_states(conn)
        initial_state = query_arg("state")
        self.user = pn.widgets.TextInput(
            label="User", placeholder="user name (prefix)", value=query_arg("user") or "",
            sizing_mode="stretch_width",
        )
        self.state = pn.widgets.Select(
            label="State", options=[ALL_STATES, *states],
            value=initial_state if initial_state in states else ALL_STATES,
            sizing_mode="stretch_width",
        )
        self.page_size = pn.widgets.Select(
            label="Jobs per page", options=PAGE_SIZES, value=50, sizing_mode="stretch_width"
        )
        self.prev = pn.widgets.Button(label="◀ Newer", width=100)
        self.next = pn.widgets.Button(label="Older ▶", width=100)
        self.status = pn.pane.Markdown("", margin=(8, 12))
        self.offset = 0
        self.total = 0
        self.table = pn.widgets.Tabulator(
            table_frame(pl.DataFrame(schema=data.JOB_LIST_SCHEMA)),
            titles=TITLES, formatters=FORMATTERS, hidden_columns=["link"],
            show_index=False, disabled=True, selectable=False, pagination=None,
            layout="fit_data_stretch", sizing_mode="stretch_width", min_height=200,
            configuration={"placeholder": "No jobs match these filters"},
        )
        self.user.param.watch(self._filters_changed, "value")
        self.state.param.watch(self._filters_changed, "value")
        self.page_size.param.watch(self._filters_changed, "value")
        self.table.param.watch(self._filters_changed, "sorters")
        self.prev.on_click(lambda _: self._move(-1))
        self.next.on_click(lambda _: self._move(+1))
        self.refresh()

    def _sort(self) -> tuple[str, bool]:
        if self.table.sorters:
            first = self.table.sorters[0]
            return first.get("field", "end"), first.get("dir") != "asc"
        return "end", True

    def _filters_changed(self, *_: object) -> None:
        self.offset = 0
        self.refresh()

    def _move(self, pages: int) -> None:
        step = int(self.page_size.value)
        self.offset = max(0, min(self.offset + pages * step, max(self.total - 1, 0)))
        self.refresh()

    def refresh(self) -> None:
        sort, descending = self._sort()
        state = None if self.state.value == ALL_STATES else self.state.value
        with data.connection() as conn:
            jobs, self.total = data.list_jobs(
                conn, user=self.user.value.strip() or None, state=state, sort=sort,
                descending=descending, limit=int(self.page_size.value), offset=self.offset,
            )
        self.table.value = table_frame(jobs)
        first = self.offset + 1 if len(jobs) else 0
        self.status.object = f"Jobs **{first}–{self.offset + len(jobs)}** of **{self.total}**"
        self.prev.disabled = self.offset == 0
        self.next.disabled = self.offset + len(jobs) >= self.total

    def view(self):
        pager = pn.Row(self.prev, self.next, self.status)
        return page(
            main=[pn.Column(pager, self.table, sizing_mode="stretch_width")],
            sidebar=[pn.pane.Markdown("### Filter jobs"), self.user, self.state, self.page_size],
            active="jobs",
        )


if __name__.startswith("bokeh"):
    JobList().view().servable(title="Jobs · hpcperfstats")
