"""``/jobs``: job search. Filters, a sortable table paged in SQL, CSV export.

Tabulator gets only the current page; header clicks come back as
``sorters`` and re-run the query, so sorting covers every job, not just the
rows on screen. Filters start from the URL (``?user=alice&state=FAILED``),
so a search can be shared as a link. Job ids link to the job's detail page.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, time
from html import escape
from urllib.parse import quote

import panel as pn
import polars as pl
from bokeh.models.widgets.tables import NumberFormatter

from dashboards import auth, data, export
from dashboards.auth import Viewer
from dashboards.layout import CHIP_CSS, chips, page, query_arg, time_arg
from dashboards.units import plot_scale
from hpcperfstats.jobs.metrics import METRICS

ANY = "any"
PAGE_SIZES = [25, 50, 100, 200]
#: Most rows one CSV export holds (a spreadsheet, not a database dump).
EXPORT_LIMIT = 100_000

TITLES = {
    "jobid": "Job", "state": "State", "user": "User / account · partition", "name": "Name",
    "end": "End (UTC) / hours", "nodes": "Nodes", "cpu_eff": "CPU eff. %",
    "trend": "CPU over time", "mem_share": "Mem. % of req.", "flags": "Flags",
}
#: Columns shown, in order; the rest of the frame feeds them (links, tooltips, CSV).
SHOWN = list(TITLES)

# Narrow columns get fixed widths (measured at 1400 px: no cell cut); the name takes the rest.
WIDTHS = {"jobid": 80, "state": 96, "user": 124, "end": 100, "nodes": 88, "cpu_eff": 72,
          "trend": 76, "mem_share": 80, "flags": 156}

_PROGRESS = {"type": "progress", "min": 0, "max": 100, "legend": True,
             "legendColor": "#000000"}
FORMATTERS = {
    "jobid": {"type": "link", "urlField": "link", "target": "_self"},
    # efficiency: red under the flag's 50 %, green above; memory: green until the
    # request is nearly full (a share of what was asked for, not of the node)
    "cpu_eff": {**_PROGRESS, "color": ["#c0392b", "#c0392b", "#27ae60", "#27ae60"]},
    "mem_share": {**_PROGRESS, "color": ["#27ae60"] * 9 + ["#c0392b"]},
    "user": {"type": "html"}, "end": {"type": "html"}, "trend": {"type": "html"},
    "flags": {"type": "html"},
    # a name wraps instead of being cut to a few characters with an ellipsis
    "name": {"type": "textarea"},
    "nodes": NumberFormatter(format="0"),
}


def sparkline(values: list[float] | None, width: int = 64, height: int = 18) -> str:
    """An inline SVG line of CPU efficiency over the run (0 at the bottom, 100 % at
    the top), with a faint 100 % line; empty when there is nothing to draw."""
    if not values:
        return ""
    n = max(1, len(values) - 1)
    points = " ".join(f"{i * width / n:.1f},{height - 1 - min(max(v, 0.0), 1.0) * (height - 2):.1f}"
                      for i, v in enumerate(values))
    mean = sum(values) / len(values)
    return (f'<svg class="hp-spark" width="{width}" height="{height}" role="img" '
            f'aria-label="CPU efficiency over the run, mean {mean:.0%}">'
            f'<line x1="0" y1="1" x2="{width}" y2="1" stroke="#ccc" stroke-width="1"/>'
            f'<polyline fill="none" stroke="#1f5f8b" stroke-width="1.5" points="{points}"/>'
            "</svg>")


_CHIP_CSS = (CHIP_CSS + ".tabulator-row .tabulator-cell[tabulator-field=flags],"
             ".tabulator-row .tabulator-cell[tabulator-field=user],"
             ".tabulator-row .tabulator-cell[tabulator-field=jobid]"
             "{white-space:normal !important;overflow-wrap:anywhere}")


def table_frame(jobs: pl.DataFrame, trends: dict[str, list[float]] | None = None):
    """The page frame as Tabulator shows it: readable times, percent, chips, sparklines."""
    trends = trends or {}
    shown = jobs.with_columns(
        pl.struct("end", "runtime").map_elements(
            lambda r: f'{r["end"].strftime("%m-%d %H:%M") if r["end"] else "running"}<br>'
                      f'<span style="color:#666">{(r["runtime"] or 0) / 3600:.1f} h</span>',
            return_dtype=pl.Utf8).alias("end"),
        (pl.col("cpu_eff") * 100).round(1),
        (pl.col("mem_hwm") / pl.col("mem_req") * 100).round(0).alias("mem_share"),
        pl.col("jobid").map_elements(lambda j: "job?jobid=" + quote(j, safe=""),
                                     return_dtype=pl.Utf8).alias("link"),
        pl.struct("user", "account", "partition").map_elements(
            lambda r: f'{escape(r["user"] or "")}<br><span style="color:#666">'
                      f'{escape(r["account"] or "")} · {escape(r["partition"] or "")}</span>',
            return_dtype=pl.Utf8),
        pl.col("jobid").map_elements(lambda j: sparkline(trends.get(j)), return_dtype=pl.Utf8
                                     ).alias("trend"),
        pl.col("flags").map_elements(chips, return_dtype=pl.Utf8),
    )
    return shown.select(*SHOWN, "link").to_pandas()


def export_csv(jobs: pl.DataFrame) -> io.StringIO:
    """The matching jobs as CSV, in stored units (seconds, fractions, bytes), with
    text cells that no spreadsheet runs as formulas (``export.csv``)."""
    return export.csv(jobs.rename({"runtime": "runtime_s", "mem_hwm": "mem_hwm_bytes"}))


def _number(name: str) -> float | None:
    value = query_arg(name, 30)
    try:
        return float(value) if value else None
    except ValueError:
        return None


class JobSearch:
    """Filter widgets, pager, table and export of one browser session.

    The one set of search widgets: the user and account pages are this class too
    (``dashboards.pages.user.UserPage``), with user and account matched exactly and
    their own URL arguments as ``initial`` values.
    """

    def __init__(self, viewer: Viewer | None = None, *, exact: bool = False,
                 initial: dict[str, str | datetime | None] | None = None) -> None:
        self.viewer = viewer or auth.current()
        self.exact = exact
        initial = initial or {}

        def arg(name: str):
            return initial[name] if name in initial else query_arg(name)
        with data.connection() as conn:
            states = data.distinct_values(conn, "state", self.viewer)
            partitions = data.distinct_values(conn, "partition", self.viewer)
            flags = data.flag_names(conn, self.viewer.cluster)
            applications = data.application_names(conn, self.viewer)
        w = {"sizing_mode": "stretch_width"}
        how = "" if exact else " (prefix)"
        self.user = pn.widgets.TextInput(name="User", placeholder=f"user name{how}",
                                         value=arg("user") or "", **w)
        self.account = pn.widgets.TextInput(name="Account", placeholder=f"account{how}",
                                            value=arg("account") or "", **w)
        self.name = pn.widgets.TextInput(name="Job name contains",
                                         value=arg("name") or "", **w)
        self.partition = self._select("Partition", partitions, arg("partition"))
        self.state = self._select("State", states, arg("state"))
        since = initial["since"] if "since" in initial else time_arg("since")
        until = initial["until"] if "until" in initial else time_arg("until")
        self.since = pn.widgets.DatePicker(name="Ran after (UTC)",
                                           value=since.date() if since else None, **w)
        self.until = pn.widgets.DatePicker(name="Ran before (UTC)",
                                           value=until.date() if until else None, **w)
        self.min_nodes = pn.widgets.IntInput(name="Nodes ≥", value=None, start=0, width=110)
        self.max_nodes = pn.widgets.IntInput(name="Nodes ≤", value=None, start=0, width=110)
        self.min_hours = pn.widgets.FloatInput(name="Run time ≥ h", value=None, start=0,
                                               width=110)
        self.max_hours = pn.widgets.FloatInput(name="Run time ≤ h", value=None, start=0,
                                               width=110)
        metric_options = {ANY: ANY} | {
            f"{spec.label} ({plot_scale(spec.unit)[1]})": key for key, spec in METRICS.items()}
        metric = query_arg("metric")
        self.metric = pn.widgets.Select(name="Metric", options=metric_options,
                                        value=metric if metric in METRICS else ANY, **w)
        self.metric_min = pn.widgets.FloatInput(name="≥", value=_number("metric_min"), width=110)
        self.metric_max = pn.widgets.FloatInput(name="≤", value=_number("metric_max"), width=110)
        self.flag = self._select("Flag", flags, arg("flag"))
        self.application = self._select("Application", applications, arg("application"))
        self.page_size = pn.widgets.Select(name="Jobs per page", options=PAGE_SIZES, value=50,
                                           **w)
        self.prev = pn.widgets.Button(name="◀ Previous", width=110)
        self.next = pn.widgets.Button(name="Next ▶", width=110)
        self.status = pn.pane.Markdown("", margin=(8, 12))
        self.download = pn.widgets.FileDownload(
            callback=self._export, filename="jobs.csv", label="Export CSV", button_type="primary",
            width=130,
        )
        self.offset = 0
        self.total = 0
        self.table = pn.widgets.Tabulator(
            table_frame(pl.DataFrame(schema=data.JOB_LIST_SCHEMA)),
            titles=TITLES, formatters=FORMATTERS, hidden_columns=["link"], widths=WIDTHS,
            show_index=False, disabled=True, selectable="checkbox", pagination=None,
            layout="fit_columns", sizing_mode="stretch_width", min_height=200,
            configuration={"placeholder": "No jobs match these filters",
                           "columnDefaults": {"headerWordWrap": True}},
            stylesheets=[_CHIP_CSS],
        )
        self.compare = pn.pane.HTML("", margin=(12, 10))
        self.table.param.watch(self._selected, "selection")
        for widget in (self.user, self.account, self.name, self.partition, self.state,
                       self.since, self.until, self.min_nodes, self.max_nodes, self.min_hours,
                       self.max_hours, self.metric, self.metric_min, self.metric_max, self.flag,
                       self.application, self.page_size):
            widget.param.watch(self._filters_changed, "value")
        self.table.param.watch(self._filters_changed, "sorters")
        self.prev.on_click(lambda _: self._move(-1))
        self.next.on_click(lambda _: self._move(+1))
        self.refresh()

    @staticmethod
    def _select(label: str, options: list[str], initial: str | None) -> pn.widgets.Select:
        return pn.widgets.Select(name=label, options=[ANY, *options],
                                 value=initial if initial in options else ANY,
                                 sizing_mode="stretch_width")

    def filters(self) -> data.JobFilter:
        """The widgets' values as the query's filter, converted to stored units."""
        def text(widget) -> str | None:
            return widget.value.strip() or None

        def choice(widget) -> str | None:
            return None if widget.value == ANY else widget.value

        def day(value, end: bool) -> datetime | None:
            if value is None:
                return None
            return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)

        def hours(value) -> float | None:
            return None if value is None else value * 3600.0

        metric = choice(self.metric)
        factor = plot_scale(METRICS[metric].unit)[0] if metric else 1.0

        def scaled(value) -> float | None:
            return None if value is None else value * factor

        return data.JobFilter(
            user=text(self.user), account=text(self.account), name=text(self.name),
            partition=choice(self.partition), state=choice(self.state),
            since=day(self.since.value, False), until=day(self.until.value, True),
            min_nodes=self.min_nodes.value, max_nodes=self.max_nodes.value,
            min_runtime_s=hours(self.min_hours.value), max_runtime_s=hours(self.max_hours.value),
            metric=metric, metric_min=scaled(self.metric_min.value),
            metric_max=scaled(self.metric_max.value), flag=choice(self.flag),
            application=choice(self.application), exact=self.exact,
        )

    def _sort(self) -> tuple[str, bool]:
        if self.table.sorters:
            first = self.table.sorters[0]
            return first.get("field", "end"), first.get("dir") != "asc"
        return "end", True

    def _selected(self, *_: object) -> None:
        """A "compare selected" link for the ticked rows (two or more)."""
        frame = self.table.value
        ids = [str(frame["jobid"].iloc[i]) for i in self.table.selection if i < len(frame)]
        if len(ids) < 2:
            self.compare.object = ('<span class="hp-note">Tick two or more jobs to compare '
                                   "them.</span>")
            return
        href = "compare?jobids=" + quote(",".join(ids), safe=",")
        self.compare.object = (f'<a class="hp-compare" href="{escape(href)}">Compare selected '
                               f"({len(ids)})</a>")

    def _filters_changed(self, *_: object) -> None:
        self.offset = 0
        self.refresh()

    def _move(self, pages: int) -> None:
        step = int(self.page_size.value)
        self.offset = max(0, min(self.offset + pages * step, max(self.total - 1, 0)))
        self.refresh()

    def _export(self) -> io.StringIO:
        sort, descending = self._sort()
        with data.connection() as conn:
            jobs, _ = data.list_jobs(conn, self.filters(), self.viewer, sort=sort,
                                     descending=descending, limit=EXPORT_LIMIT, count=False)
        return export_csv(jobs)

    def refresh(self) -> None:
        sort, descending = self._sort()
        with data.connection() as conn:
            jobs, self.total = data.list_jobs(
                conn, self.filters(), self.viewer, sort=sort, descending=descending,
                limit=int(self.page_size.value), offset=self.offset,
            )
            trends = data.efficiency_sparklines(conn, jobs["jobid"].to_list(),
                                                cluster=self.viewer.cluster)
        self.table.value = table_frame(jobs, trends)
        self.table.selection = []
        self._selected()
        first = self.offset + 1 if len(jobs) else 0
        total = (f"more than {data.COUNT_LIMIT:,}" if self.total > data.COUNT_LIMIT
                 else str(self.total))
        self.status.object = f"Jobs **{first}–{self.offset + len(jobs)}** of **{total}**"
        self.prev.disabled = self.offset == 0
        self.next.disabled = self.offset + len(jobs) >= self.total

    def sidebar(self) -> list:
        """The filter widgets, in the order the sidebar shows them."""
        return [
            self.user, self.account, self.name, self.partition, self.state, self.since,
            self.until, pn.Row(self.min_nodes, self.max_nodes),
            pn.Row(self.min_hours, self.max_hours), self.metric,
            pn.Row(self.metric_min, self.metric_max), self.flag, self.application,
            self.page_size,
        ]

    def results(self) -> pn.Column:
        """Pager, compare link, export and the table."""
        pager = pn.Row(self.prev, self.next, self.status, self.compare, pn.layout.HSpacer(),
                       self.download, sizing_mode="stretch_width")
        return pn.Column(pager, self.table, sizing_mode="stretch_width")

    def view(self):
        return page(main=[self.results()],
                    sidebar=[pn.pane.Markdown("### Search jobs"), *self.sidebar()],
                    active="jobs", viewer=self.viewer)


if __name__.startswith("bokeh"):
    JobSearch().view().servable(title="Jobs · hpcperfstats")
