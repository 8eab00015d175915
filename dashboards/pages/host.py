"""``/host?host=...&start=...&end=...``: every collected type on one node over time.

The jobs that ran on the node are shaded as bands labelled with job id and
user, and listed with links; the plots sit in tabs by kind (the job page's
grouping).
Staff only: a node's counters mix every job that ran on it, so a
researcher asking for a host gets the same answer as for a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, cluster, data, long_range, timeseries
from dashboards.auth import Viewer
from dashboards.layout import fmt_time, html, message, page, query_arg, time_arg
from dashboards.pages.job import TAB_ORDER, TABS
from dashboards.plots import host_lines, job_bands, raw_event, stack
from dashboards.units import duration
from hpcperfstats.hostdata.series import SERIES

DEFAULT_RANGE = timedelta(hours=24)
HOST_SERIES = [n for n in SERIES if n not in ("cpu_total", "mem_total")]


def jobs_table(jobs: list[dict]) -> pn.pane.HTML:
    if not jobs:
        return html('<p class="hp-note">No jobs ran on this node in the range.</p>')
    rows = "".join(
        f'<tr><td><a href="job?jobid={quote(j["jobid"], safe="")}">{escape(j["jobid"])}</a></td>'
        f'<td>{escape(j["username"] or "")}</td><td>{escape(j["jobname"] or "")}</td>'
        f'<td>{escape(fmt_time(j["start_time"]))}</td><td>{escape(fmt_time(j["end_time"]))}</td>'
        "</tr>" for j in jobs)
    return html('<table class="hp-facts"><tr><th>Job</th><th>User</th><th>Name</th>'
                f"<th>Start</th><th>End</th></tr>{rows}</table>")


def host_tabs(named: pl.DataFrame, extra: pl.DataFrame, jobs: list[dict], end: datetime):
    """The node's plots in tabs by kind (CPU, memory, network, storage, GPU, energy,
    other types: the job page's grouping), each with the job bands. Tabs render
    when first opened, so the page shows the first one without building the rest."""
    groups: dict[str, list[Any]] = {}
    present = set(named["series"].to_list()) if not named.is_empty() else set()
    for name in (n for n in HOST_SERIES if n in present):
        part = named.filter(pl.col("series") == name)
        groups.setdefault(TABS.get(name, "Other"), []).append(
            job_bands(host_lines(part, SERIES[name].label, SERIES[name].unit), jobs, end))
    for (type_, event, unit), part in extra.group_by("type", "event", "unit",
                                                     maintain_order=True):
        groups.setdefault("Other", []).append(
            job_bands(host_lines(*raw_event(part, type_, event, unit)), jobs, end))
    if not groups:
        return html('<p class="hp-note">No samples from this host in the range.</p>')
    tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
    for tab in (t for t in TAB_ORDER if t in groups):
        tabs.append((tab, stack(groups[tab])))
    return tabs


def host_view(viewer: Viewer, host: str | None, start: datetime | None, end: datetime | None):
    if not host:
        return page([message("No host given: add ?host=<name> to the address.",
                             ("overview", "Back to the overview"))], viewer=viewer)
    if not viewer.staff or not data.valid_text(host):
        return page([message(f"Host {host} not found.", ("overview", "Back to the overview"))],
                    viewer=viewer)
    with data.connection() as conn:
        if end is None:
            fresh = cluster.freshness(conn, cluster=viewer.cluster)
            row = fresh.filter(pl.col("host") == host)
            end = row["last"][0] if not row.is_empty() else datetime.now(UTC)
        start = start or end - DEFAULT_RANGE
        if long_range.use_aggregates(start, end):  # a long range: host_agg
            named, _ = long_range.cluster_series(conn, start, end, HOST_SERIES,
                                                 timeseries.MAX_POINTS, host, viewer.cluster)
            extra = long_range.cluster_extra(conn, start, end, timeseries.MAX_POINTS, host,
                                             viewer.cluster)
        else:
            named = timeseries.series(conn, [host], start, end, HOST_SERIES,
                                      cluster=viewer.cluster)
            extra = timeseries.extra_types(conn, [host], start, end, cluster=viewer.cluster)
        jobs = cluster.host_jobs(conn, viewer, host, start, end)
    body = host_tabs(named, extra, jobs, end)
    heading = html(
        f"<h2 style='margin:0'>Host {escape(host)}</h2><p class='hp-note'>"
        f"{escape(fmt_time(start))} to {escape(fmt_time(end))} "
        f"({escape(duration((end - start).total_seconds()))}). Shaded: jobs on the node, "
        "labelled with job id and user.</p>")

    def card(body, title):
        return pn.Card(body, title=title, collapsible=False, sizing_mode="stretch_width")

    return page([pn.Column(heading, card(jobs_table(jobs), f"Jobs ({len(jobs)})"),
                           card(body, "Every type over time, by kind"),
                           sizing_mode="stretch_width")],
                viewer=viewer)


if __name__.startswith("bokeh"):
    host_view(auth.current(), query_arg("host"), time_arg("start"), time_arg("end")).servable(
        title="Host · hpcperfstats")
