"""``/compare?jobids=1,2,3``: several jobs' metrics side by side.

A table (one column per job, one row per metric and accounting fact) and
each job's mean series over elapsed time, so a good run and a slow run of
the same code can be laid on top of each other. Jobs the viewer may not see
are reported as not found, like everywhere else.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, data, timeseries
from dashboards.auth import Viewer
from dashboards.layout import html, page, printable, query_arg
from dashboards.plots import line_plot, stack
from dashboards.units import human, metric_text, plot_scale
from hpcperfstats.hostdata.series import SERIES
from hpcperfstats.jobs.metrics import METRICS
from hpcperfstats.report.presentation import metric_rank

MAX_JOBS = 8
FACTS = [("User", "username", None), ("State", "state", None), ("Nodes", "nnodes", None),
         ("Cores", "ncpus", None), ("Run time", "elapsed_s", "s"),
         ("Memory requested", "req_mem_bytes", "B")]


def parse_ids(text: str | None) -> list[str]:
    ids = [t.strip() for t in (text or "").replace(" ", ",").split(",") if t.strip()]
    return list(dict.fromkeys(ids))[:MAX_JOBS]


#: Values closer than this (relative) are the same for a reader: nothing to highlight.
SAME = 0.05


def highlight(values: dict[str, float], better: str) -> dict[str, str]:
    """Which cells of a metric row stand out: with a direction, the best (``hp-best``)
    and the worst (``hp-worst``); without, every value unlike the first job's
    (``hp-diff``). Nothing when the values are within :data:`SAME` of each other."""
    if len(values) < 2:
        return {}
    low, high = min(values.values()), max(values.values())
    if high - low <= SAME * max(abs(low), abs(high), 1e-12):
        return {}
    if better in ("higher", "lower"):
        best, worst = (high, low) if better == "higher" else (low, high)
        return {k: "hp-best" if v == best else "hp-worst" for k, v in values.items()
                if v in (best, worst)}
    first = next(iter(values.values()))
    return {k: "hp-diff" for k, v in values.items()
            if abs(v - first) > SAME * max(abs(v), abs(first), 1e-12)}


def side_by_side(jobs: list[dict], metrics: pl.DataFrame) -> pn.pane.HTML:
    head = "".join(f'<th><a href="job?jobid={quote(j["jobid"], safe="")}">'
                   f'{escape(j["jobid"])}</a><br><span class="hp-note">'
                   f'{escape(j.get("jobname") or "")}</span></th>' for j in jobs)
    rows = []
    for label, key, unit in FACTS:
        cells = "".join(f"<td>{escape(human(j.get(key), unit) if unit else str(j.get(key) or '—'))}"
                        "</td>" for j in jobs)
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    for metric, spec in sorted(METRICS.items(), key=lambda kv: metric_rank(kv[0])):
        found = {j["jobid"]: metrics.filter((pl.col("jobid") == j["jobid"])
                                            & (pl.col("metric") == metric)) for j in jobs}
        values = {k: m["value"][0] for k, m in found.items() if not m.is_empty()}
        if all(v is None for v in values.values()):
            continue  # a value for none of these jobs: a row of dashes says nothing
        marks = highlight({k: v for k, v in values.items() if v is not None}, spec.better)
        cells = []
        for j in jobs:
            m = found[j["jobid"]]
            if m.is_empty():
                cells.append("<td>—</td>")
            elif m["value"][0] is None:
                cells.append(f'<td class="hp-reason">{escape(m["reason"][0] or "n/a")}</td>')
            else:
                text = metric_text(metric, m["value"][0], m["unit"][0])
                mark = marks.get(j["jobid"], "")
                cells.append(f'<td class="{mark}">{escape(text)}</td>' if mark
                             else f"<td>{escape(text)}</td>")
        rows.append(f"<tr><th>{escape(spec.label)}</th>{''.join(cells)}</tr>")
    return html(f'<table class="hp-facts"><tr><th></th>{head}</tr>{"".join(rows)}</table>')


def overlay(jobs: list[dict], series: dict[str, pl.DataFrame]) -> pn.viewable.Viewable:
    """Per series, each job's mean over its hosts against hours since its start."""
    plots = []
    for name in timeseries.PLOTTED_SERIES:
        spec = SERIES[name]
        factor, axis_unit = plot_scale(spec.unit)
        curves = {}
        for job in jobs:
            frame = series.get(job["jobid"])
            if frame is None or frame.is_empty():
                continue
            part = frame.filter(pl.col("series") == name)
            if part.is_empty():
                continue
            curves[f"job {job['jobid']}"] = (
                part.group_by("time").agg(pl.col("value").mean()).sort("time").select(
                    ((pl.col("time") - job["start_time"]).dt.total_seconds() / 3600)
                    .alias("hours"), pl.col("value") / factor))
        if curves:
            plots.append(line_plot(f"{spec.label} (mean over hosts)", curves, axis_unit,
                                   x="hours", xlabel="hours since start"))
    if not plots:
        return html('<p class="hp-note">No time series for these jobs.</p>')
    return stack(plots)


def compare_view(viewer: Viewer, ids: list[str]):
    form = html("<form method='get' style='display:flex;gap:10px;align-items:end'>"
                "<label>Job ids (comma separated)<br>"
                "<input name='jobids' size='50' "
                f"value='{escape(printable(', '.join(ids)))}'></label>"
                "<button type='submit'>Compare</button></form>")
    if not ids:
        return page([form, html('<p class="hp-note">Give two or more job ids.</p>')],
                    active="compare", viewer=viewer)
    with data.connection() as conn:
        jobs = [j for j in (data.job_record(conn, i, viewer) for i in ids) if j is not None]
        metrics = data.metrics_for_jobs(conn, [j["jobid"] for j in jobs], viewer)
        series = {j["jobid"]: timeseries.job_series(conn, j, max_points=120) for j in jobs}
    missing = [i for i in ids if i not in {j["jobid"] for j in jobs}]
    parts = [form]
    if missing:
        missing_text = escape(printable(", ".join(missing)))
        parts.append(html(f'<p class="hp-reason">Not found: {missing_text}</p>'))
    if jobs:
        parts += [pn.Card(side_by_side(jobs, metrics), title="Side by side",
                          collapsible=False, sizing_mode="stretch_width"),
                  pn.Card(overlay(jobs, series), title="Over elapsed time", collapsible=False,
                          sizing_mode="stretch_width")]
    return page([pn.Column(*parts, sizing_mode="stretch_width")], active="compare",
                viewer=viewer)


if __name__.startswith("bokeh"):
    compare_view(auth.current(), parse_ids(query_arg("jobids", 1000))).servable(
        title="Compare · hpcperfstats")
