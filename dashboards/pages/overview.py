"""``/overview``: the cluster now and over a range (``?start=...&end=...``).

Staff: nodes reporting and silent, jobs running and finished, cluster-wide
use over time, the most flagged jobs, and the last sample of every host.
Researchers: their own jobs, and everyone's jobs only as pooled figures that
cover enough jobs and users (``data.scope_clause(pooled=True)``). The
range ends at the newest sample by default, so a cluster whose feed has
stopped still shows its last day (and the freshness table says it stopped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, cluster, data, long_range, timeseries
from dashboards.auth import Viewer
from dashboards.layout import chips, fmt_time, html, page, time_arg
from dashboards.plots import line_plot, raw_event, stack
from dashboards.units import duration, human, plot_scale
from hpcperfstats.hostdata.series import SERIES

DEFAULT_RANGE = timedelta(hours=24)
#: Points per cluster-wide plot: read from the aggregates once a bucket spans 5 minutes
#: (``long_range.aggregates_serve``), from every host's raw rows below that.
POINTS = 200


def tiles(items: list[tuple[str, str]]) -> pn.pane.HTML:
    body = "".join(f'<div class="hp-tile"><div class="n">{escape(n)}</div>'
                   f'<div class="l">{escape(label)}</div></div>' for n, label in items)
    return html(f'<div class="hp-tiles">{body}</div>')


def cluster_plots(named: pl.DataFrame, extra: pl.DataFrame,
                  reporting: pl.DataFrame | None = None) -> pn.viewable.Viewable:
    """Cluster totals over time: each series summed over the hosts reporting
    (``reporting``: hosts per time, when the rows are cluster aggregates)."""
    plots = []
    frames = []
    if not named.is_empty():
        frames.append(named.with_columns(
            pl.col("series").replace_strict({k: v.label for k, v in SERIES.items()},
                                            default=pl.col("series")).alias("label")))
    for (type_, event, unit), part in (extra.group_by("type", "event", "unit", maintain_order=True)
                                       if not extra.is_empty() else []):
        part, label, unit = raw_event(part, type_, event, unit)
        frames.append(part.with_columns(pl.lit(label).alias("label"), pl.lit(unit).alias("unit"))
                      .select("time", "host", pl.col("label").alias("series"), "value", "unit",
                              "label"))
    if not frames:
        return html('<p class="hp-note">No samples in this range.</p>')
    both = pl.concat([f.select("time", "host", "value", "unit", "label") for f in frames])
    totals = both.group_by("label", "unit", "time").agg(pl.col("value").sum(),
                                                        pl.col("host").n_unique().alias("hosts"))
    if reporting is not None:
        totals = totals.drop("hosts").join(reporting, on="time", how="left")
    order = {SERIES[n].label: i for i, n in enumerate(timeseries.PLOTTED_SERIES)}
    totals = totals.with_columns(
        pl.col("label").replace_strict(order, default=len(order)).alias("_o")
    ).sort("_o", "label", "time")
    for (label, unit), part in totals.group_by("label", "unit", maintain_order=True):
        factor, axis_unit = plot_scale(unit)
        frame = part.select(pl.col("time").dt.replace_time_zone(None),
                            (pl.col("value") / factor).alias("value"), "hosts")
        plots.append(line_plot(f"{label}, cluster total", {label: frame}, axis_unit,
                               colour="#1f5f8b", extra=[("hosts", "@hosts")]))
    return stack(plots, cols=2)


def flagged_table(flagged: pl.DataFrame) -> pn.pane.HTML:
    if flagged.is_empty():
        return html('<p class="hp-note">No flagged jobs in this range.</p>')
    rows = "".join(
        f'<tr><td><a href="job?jobid={quote(r["jobid"], safe="")}">{escape(r["jobid"])}</a></td>'
        f'<td>{escape(r["user"] or "")}</td><td>{escape(r["name"] or "")}</td>'
        f'<td>{r["flags"]}</td><td>{chips(r["which"])}</td></tr>'
        for r in flagged.iter_rows(named=True))
    return html('<table class="hp-facts"><tr><th>Job</th><th>User</th><th>Name</th>'
                f"<th>Flags</th><th>Which</th></tr>{rows}</table>")


def freshness_table(fresh: pl.DataFrame, staff: bool) -> pn.pane.HTML:
    if fresh.is_empty():
        return html('<p class="hp-note">No host has reported yet.</p>')
    ordered = fresh.sort(["age_s", "host"], descending=[True, False])  # stalest first
    rows = []
    for r in ordered.head(500).iter_rows(named=True):
        host = escape(r["host"])
        if staff:
            host = f'<a href="host?host={quote(r["host"], safe="")}">{host}</a>'
        state = '<span class="hp-reason">silent</span>' if r["silent"] else "reporting"
        rows.append(f"<tr><td>{host}</td><td>{escape(fmt_time(r['last']))}</td>"
                    f"<td>{escape(duration(r['age_s']))} ago</td>"
                    f"<td>{escape(duration(r['interval_s']))}</td><td>{state}</td></tr>")
    return html('<table class="hp-facts"><tr><th>Host</th><th>Last sample</th><th>Age</th>'
                f"<th>Interval</th><th>State</th></tr>{''.join(rows)}</table>")


def pooled_view(summary: dict | None) -> pn.pane.HTML:
    """Everyone's jobs in the range, as a researcher may see them (or why not)."""
    if summary is None:
        return html(f'<p class="hp-note">Cluster-wide figures are withheld for this range: '
                    f"they are shown only when they cover at least {data.MIN_POOL_JOBS} "
                    f"jobs of at least {data.MIN_POOL_USERS} users.</p>")
    return tiles([
        (str(summary["jobs"]), "jobs finished on the cluster"),
        (str(summary["users"]), "users"),
        (f"{float(summary['core_hours'] or 0):,.0f}", "core-hours"),
        (human(summary["cpu_efficiency"], "1"), "CPU efficiency (core-hour weighted)"),
    ])


def overview(viewer: Viewer, start: datetime | None, end: datetime | None):
    """Staff see the cluster (hosts, totals over time); researchers their own jobs
    and pooled figures only (no host names, no cluster-wide series)."""
    now = datetime.now(UTC)
    with data.connection() as conn:
        fresh = cluster.freshness(conn, now, viewer.cluster)
        end = end or cluster.latest_sample(fresh) or now
        start = start or end - DEFAULT_RANGE
        counts = cluster.job_counts(conn, viewer, start, end)
        flagged = cluster.most_flagged(conn, viewer, start, end)
        pooled = data.cluster_summary(conn, viewer, start, end)
        if viewer.staff:
            hosts, reporting = fresh["host"].to_list(), None
            if long_range.aggregates_serve(conn, start, end, POINTS,
                                           cluster.latest_sample(fresh), viewer.cluster):
                named, reporting = long_range.cluster_series(
                    conn, start, end, timeseries.PLOTTED_SERIES, POINTS, cluster=viewer.cluster)
                extra = long_range.cluster_extra(conn, start, end, POINTS,
                                                 cluster=viewer.cluster)
            else:
                named = timeseries.series(conn, hosts, start, end, timeseries.PLOTTED_SERIES,
                                          POINTS, viewer.cluster)
                extra = timeseries.extra_types(conn, hosts, start, end, POINTS, viewer.cluster)
    whose = "" if viewer.staff else "your "
    job_tiles = [(str(counts["running"]), f"{whose}jobs running at range end"),
                 (str(counts["finished"]), f"{whose}jobs finished in range")]
    heading = html(f"<h2 style='margin:0'>Cluster overview</h2><p class='hp-note'>"
                   f"{escape(fmt_time(start))} to {escape(fmt_time(end))}. Silent: no sample "
                   f"for more than {cluster.SILENT_INTERVALS} sampling intervals.</p>")

    def card(body, title):
        return pn.Card(body, title=title, collapsible=False, sizing_mode="stretch_width")

    if not viewer.staff:
        return page([pn.Column(
            heading, tiles(job_tiles), card(pooled_view(pooled), "Everyone's jobs in range"),
            card(flagged_table(flagged), "Your most flagged jobs"),
            sizing_mode="stretch_width")], active="overview", viewer=viewer)
    silent = int(fresh["silent"].sum()) if not fresh.is_empty() else 0
    summary = tiles([(str(fresh.height - silent), "nodes reporting"),
                     (str(silent), "nodes silent"), *job_tiles])
    return page([pn.Column(
        heading, summary, card(cluster_plots(named, extra, reporting), "Use across the cluster"),
        pn.Row(card(flagged_table(flagged), "Most flagged jobs"),
               card(freshness_table(fresh, viewer.staff), "Data freshness"),
               sizing_mode="stretch_width"),
        sizing_mode="stretch_width")], active="overview", viewer=viewer)


if __name__.startswith("bokeh"):
    overview(auth.current(), time_arg("start"), time_arg("end")).servable(
        title="Overview · hpcperfstats")
