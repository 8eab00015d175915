"""``/job?jobid=...``: one job's accounting, metrics and per-host time series.

Numbers are shown next to what the job was allocated (the Princeton
``jobstats`` habit), so a researcher sees at a glance whether the cores or
memory they asked for were used.
"""

from __future__ import annotations

from html import escape
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers the .hvplot accessor)
import panel as pn
import polars as pl

from dashboards import data
from dashboards.layout import page, query_arg
from dashboards.units import duration, human, plot_scale

METRIC_LABELS = {
    "cpu_cores_avg": "CPU cores busy (avg per node)",
    "cpu_efficiency": "CPU efficiency",
    "mem_hwm_bytes": "Memory high-water mark",
    "net_bw_avg": "Network bandwidth (avg per node)",
}

_CSS = """
table.hp-facts { border-collapse: collapse; width: 100%; font-size: 14px; }
table.hp-facts th { text-align: left; color: #555; font-weight: 600; padding: 4px 14px 4px 0;
                    white-space: nowrap; vertical-align: top; }
table.hp-facts td { padding: 4px 0; }
table.hp-facts tr + tr { border-top: 1px solid #eee; }
.hp-reason { color: #a05a00; }
.hp-note { color: #777; font-size: 13px; }
.hp-value { font-weight: 600; }
.hp-message { font-size: 18px; padding: 24px; background: #fff6e5; border-left: 4px solid #e67e22; }
"""


def _html(body: str, **kwargs: Any) -> pn.pane.HTML:
    return pn.pane.HTML(body, stylesheets=[_CSS], sizing_mode="stretch_width", **kwargs)


def _rows(pairs: list[tuple[str, str]]) -> str:
    """An HTML table of (label, value); both are escaped here, nowhere else."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="hp-facts">{body}</table>'


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def _text(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


def facts(job: dict[str, Any]) -> pn.pane.HTML:
    hosts = job.get("hosts") or []
    pairs = [
        ("User", _text(job.get("username"))),
        ("Account", _text(job.get("account"))),
        ("Partition", _text(job.get("partition"))),
        ("QOS", _text(job.get("qos"))),
        ("State", _text(job.get("state"))),
        ("Exit code", _text(job.get("exit_code"))),
        ("Submitted", _time(job.get("submit_time"))),
        ("Started", _time(job.get("start_time"))),
        ("Ended", _time(job.get("end_time"))),
        ("Run time", duration(job.get("elapsed_s"))),
        ("Time limit", duration(job.get("timelimit_s"))),
        ("Nodes", _text(job.get("nnodes"))),
        ("Cores", _text(job.get("ncpus"))),
        ("Memory requested", human(job.get("req_mem_bytes"), "B")),
        ("GPUs", _text(job.get("ngpus"))),
        ("Hosts", ", ".join(hosts) or "—"),
    ]
    return _html(_rows(pairs))


def _allocated_cores(job: dict[str, Any]) -> float | None:
    nnodes, ncpus = job.get("nnodes"), job.get("ncpus")
    return ncpus / nnodes if nnodes and ncpus else None


def _allocated(metric: str, job: dict[str, Any]) -> str:
    """What the job asked for, next to the metric that measures its use."""
    cores = _allocated_cores(job)
    if metric == "cpu_cores_avg" and cores:
        return f"of {cores:g} allocated per node"
    if metric == "mem_hwm_bytes" and job.get("req_mem_bytes"):
        return f"of {human(job['req_mem_bytes'], 'B')} requested"
    return ""


def metrics_table(metrics: pl.DataFrame, job: dict[str, Any]) -> pn.pane.HTML:
    if metrics.is_empty():
        return _html('<p class="hp-note">No metrics computed for this job yet.</p>')
    rows = []
    for row in metrics.iter_rows(named=True):
        label = METRIC_LABELS.get(row["metric"], row["metric"])
        if row["value"] is None:
            shown = f'<span class="hp-reason">not available: {escape(_text(row["reason"]))}</span>'
        else:
            value = escape(human(row["value"], row["unit"]))
            note = escape(_allocated(row["metric"], job))
            shown = f'<span class="hp-value">{value}</span> <span class="hp-note">{note}</span>'
        rows.append(f"<tr><th>{escape(label)}</th><td>{shown}</td></tr>")
    return _html(f'<table class="hp-facts">{"".join(rows)}</table>')


def _ordered(names: list[str]) -> list[str]:
    first = data.PLOTTED_SERIES
    return [n for n in first if n in names] + sorted(n for n in names if n not in first)


def series_plots(
    series: pl.DataFrame, specs: dict[str, Any], job: dict[str, Any]
) -> pn.viewable.Viewable:
    """One plot per series, one line per host, x axes linked across plots.

    The CPU plot carries a dashed line at the cores allocated per node, so
    idle allocations show without reading numbers.
    """
    if series.is_empty():
        return _html('<p class="hp-note">No time series recorded on this job\'s hosts '
                     "during its run time.</p>")
    plots = []
    names = _ordered(series["series"].unique().to_list())
    cores = _allocated_cores(job)
    for index, name in enumerate(names):
        part = series.filter(pl.col("series") == name)
        spec = specs.get(name)
        unit = part["unit"][0]
        factor, axis_unit = plot_scale(unit)
        label = spec.label if spec is not None else name
        ycol = f"{label} ({axis_unit})" if axis_unit else label
        frame = part.select(
            pl.col("time").dt.replace_time_zone(None),
            "host",
            (pl.col("value") / factor).alias(ycol),
        ).to_pandas()
        reference = cores if unit == "cores" else None
        top = max(float(frame[ycol].max() or 0.0), reference or 0.0) * 1.08 or 1.0
        plot = frame.hvplot.line(
            x="time", y=ycol, by="host", title=label, ylabel=axis_unit,
            xlabel="time (UTC)" if index == len(names) - 1 else "",
            responsive=True, height=220, legend="right", ylim=(0, top),
        )
        if reference:
            plot = plot * hv.HLine(reference).opts(color="#777", line_dash="dashed",
                                                   line_width=1.5)
        plots.append(plot)
    layout = hv.Layout(plots).cols(1)
    caption = _html('<p class="hp-note">One line per host. Dashed: cores allocated per node. '
                    "Drag to pan, scroll to zoom; the time axes move together.</p>")
    return pn.Column(caption, pn.pane.HoloViews(layout, sizing_mode="stretch_width",
                                                linked_axes=True), sizing_mode="stretch_width")


def message(text: str) -> pn.pane.HTML:
    return _html(f'<div class="hp-message">{escape(text)} '
                 '<a href="jobs">Back to the job list</a></div>')


def job_view(jobid: str | None):
    """The whole page for one job id (or the reason there is none to show)."""
    if not jobid:
        return page([message("No job given: open one from the job list, "
                             "or add ?jobid=<id> to the address.")])
    with data.connection() as conn:
        job = data.job_record(conn, jobid)
        if job is None:
            return page([message(f"Job {jobid} not found.")])
        metrics = data.job_metrics(conn, jobid)
        series = data.job_series(conn, job)
    specs = data.series_specs()
    name = job.get("jobname") or ""
    heading = _html(
        f"<h2 style='margin:0'>Job {escape(jobid)} "
        f"<span style='font-weight:400;color:#555'>{escape(name)}</span></h2>"
    )
    top = pn.Row(
        pn.Card(facts(job), title="Accounting", collapsible=False, sizing_mode="stretch_width"),
        pn.Card(metrics_table(metrics, job), title="Metrics", collapsible=False,
                sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
    plots = pn.Card(series_plots(series, specs, job), title="Per-host time series",
                    collapsible=False, sizing_mode="stretch_width")
    return page([pn.Column(heading, top, plots, sizing_mode="stretch_width")])


if __name__.startswith("bokeh"):
    job_view(query_arg("jobid")).servable(title="Job · hpcperfstats")
