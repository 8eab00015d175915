"""The job page's roofline and footprint (ClusterCockpit's two summary charts).

Separate from ``job.py`` so the page only places them: the numbers come from
the pure functions ``hpcperfstats.jobs.roofline.roofline`` and
``hpcperfstats.jobs.footprint.footprint``; here they become a log-log Bokeh
plot with its numbers beside it, and a compact bullet chart in HTML (one row
per metric, the partition's middle half as a band, the job as a dot).
"""

from __future__ import annotations

from html import escape
from typing import Any

import panel as pn
import polars as pl
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from dashboards.layout import html
from hpcperfstats.jobs.footprint import footprint
from hpcperfstats.jobs.roofline import Peaks, roof_note, roofline, roofline_missing
from hpcperfstats.report.presentation import flops_text, human, intensity_text, metric_text

#: the title the plot is found by (browser tests, people)
ROOFLINE_TITLE = "Roofline: FLOP/s per node vs arithmetic intensity"
TONES = {"good": "#1e8449", "bad": "#c0392b", "neutral": "#1f5f8b", "unknown": "#777"}


def _numbers(job: dict[str, Any], peaks: Peaks) -> str:
    """The job's point in words and numbers."""
    rows = [
        ("FLOPS per node", flops_text(job["flops"])),
        ("Memory bandwidth per node", human(job["mem_bw"], "B/s")),
        ("Arithmetic intensity", intensity_text(job["intensity"])),
    ]
    if peaks.known:
        rows += [
            ("Node peaks", f"{flops_text(peaks.flops)}, {human(peaks.mem_bw, 'B/s')} "
                           f"(ridge at {intensity_text(peaks.ridge)})"),
            ("Roof at this intensity", flops_text(job["attainable"])),
            ("Reached", "—" if job["of_attainable"] is None
             else f"{job['of_attainable']:.1%} of the roof"),
            ("Limited by", {"memory": "memory bandwidth (left of the ridge)",
                            "compute": "the cores' FLOP rate (right of the ridge)"}.get(
                                job["bound"] or "", "—")),
        ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="hp-facts hp-roofline">{body}</table>'


def _nodes(points: pl.DataFrame) -> str:
    nodes = points.filter(pl.col("scope") == "node")
    if nodes.height < 2:
        return ""
    rows = "".join(
        f'<tr data-host="{escape(r["host"])}"><td>{escape(r["host"])}</td>'
        f"<td>{escape(flops_text(r['flops']))}</td><td>{escape(human(r['mem_bw'], 'B/s'))}</td>"
        f"<td>{escape(intensity_text(r['intensity']))}</td></tr>"
        for r in nodes.iter_rows(named=True))
    return ('<table class="hp-facts hp-roofline-nodes"><tr><th>Node</th><th>FLOPS</th>'
            f"<th>Memory bandwidth</th><th>Intensity</th></tr>{rows}</table>")


def roofline_figure(points: pl.DataFrame, peaks: Peaks):
    """Log-log: the roofs (bandwidth slope up to the ridge, flat compute roof after),
    each node as a small dot and the job as a large one."""
    drawn = points.filter((pl.col("intensity") > 0) & (pl.col("flops") > 0))
    xs = drawn["intensity"].to_list() + ([peaks.ridge] if peaks.known else [])
    ys = drawn["flops"].to_list() + ([peaks.flops] if peaks.known else [])
    lo, hi = min(xs) / 10, max(xs) * 10
    fig = figure(title=ROOFLINE_TITLE, x_axis_type="log", y_axis_type="log", height=340,
                 sizing_mode="stretch_width", x_range=(lo, hi),
                 y_range=(min(ys) / 10, max(ys) * 3), toolbar_location="right",
                 x_axis_label="arithmetic intensity (FLOP per byte of memory traffic)",
                 y_axis_label="FLOP/s per node")
    if peaks.known:
        ridge = peaks.ridge
        fig.line([lo, ridge, hi], [lo * peaks.mem_bw, peaks.flops, peaks.flops],
                 line_width=2, color="#444", legend_label="roof (node peaks)", name="roof")
    node_rows = drawn.filter(pl.col("scope") == "node")
    for scope, size, colour, label in (("node", 7, "#8fb3d9", "nodes"),
                                       ("job", 14, "#c0392b", "this job")):
        part = node_rows if scope == "node" else drawn.filter(pl.col("scope") == "job")
        if part.is_empty():
            continue
        source = ColumnDataSource({
            "x": part["intensity"].to_list(), "y": part["flops"].to_list(),
            "host": [h or "job (per node)" for h in part["host"].to_list()],
            "bw": part["mem_bw"].to_list()})
        fig.scatter("x", "y", source=source, size=size, color=colour, legend_label=label,
                    name=scope)
    fig.add_tools(HoverTool(tooltips=[("", "@host"), ("intensity", "@x{0.000} FLOP/B"),
                                      ("FLOP/s", "@y{0.00a}"), ("bytes/s", "@bw{0.00a}")]))
    fig.add_layout(fig.legend[0], "right")  # outside the data
    return fig


def roofline_view(series: pl.DataFrame, peaks: Peaks):
    """The roofline of a job's named series, or in words why there is none."""
    why = roofline_missing(series, peaks)
    if why is not None:
        return html(f'<p class="hp-note hp-no-roofline">{escape(why)}</p>')
    points = roofline(series, peaks)
    job = points.filter(pl.col("scope") == "job").row(0, named=True)
    note = roof_note(peaks)
    parts = [_numbers(job, peaks), _nodes(points)]
    if note:
        parts.append(f'<p class="hp-note">{escape(note)}</p>')
    numbers = pn.Column(html("".join(parts)), width=560)
    if job["flops"] <= 0 or not job["intensity"]:
        return numbers  # nothing to place on log axes
    return pn.Row(numbers, pn.pane.Bokeh(roofline_figure(points, peaks),
                                         sizing_mode="stretch_width"),
                  sizing_mode="stretch_width")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pct(x: float | None, axis: float) -> float:
    return 0.0 if x is None or axis <= 0 else max(0.0, min(x / axis, 1.0)) * 100


def footprint_view(job: dict[str, Any], values: dict[str, float | None],
                   norms: dict[str, dict[str, Any] | None], where: str) -> pn.pane.HTML:
    """One bullet row per metric: the partition's 10-90th percentiles (light) and
    middle half (darker) as bands, its median as a tick, the job as a dot
    coloured by whether its side of the middle half is the better one."""
    rows = footprint(values, norms)
    if rows.is_empty():
        return html('<p class="hp-note">No metric of this job to place among its '
                    "partition's jobs.</p>")
    out = []
    for r in rows.iter_rows(named=True):
        axis = r["axis_max"]
        value = escape(metric_text(r["metric"], r["value"], r["unit"]))
        bands = ""
        if r["jobs"] is not None:
            p10, p90 = _pct(r["p10"], axis), _pct(r["p90"], axis)
            p25, p75 = _pct(r["p25"], axis), _pct(r["p75"], axis)
            bands = (f'<span class="hp-fp-wide" style="position:absolute;top:5px;height:10px;'
                     f'left:{p10:.1f}%;width:{p90 - p10:.1f}%;background:#dde6ef"></span>'
                     f'<span class="hp-fp-band" style="position:absolute;top:3px;height:14px;'
                     f'left:{p25:.1f}%;width:{max(p75 - p25, 0.5):.1f}%;background:#aac3dc">'
                     "</span>"
                     f'<span class="hp-fp-median" style="position:absolute;top:0;height:20px;'
                     f'left:{_pct(r["median"], axis):.1f}%;width:2px;background:#1f3f5f"></span>')
            median = escape(metric_text(r["metric"], r["median"], r["unit"]))
            words = (f"above {r['below']:.0%} of {_count(r['jobs'], 'job')} of "
                     f"{_count(r['users'], 'user')} (median {median})")
        else:
            words = "no norm: too few comparable jobs to show without exposing one"
        dot = (f'<span class="hp-fp-dot" style="position:absolute;top:2px;width:16px;'
               f"height:16px;border-radius:8px;margin-left:-8px;left:{_pct(r['value'], axis):.1f}%;"
               f'background:{TONES[r["tone"]]};border:2px solid #fff"></span>')
        out.append(
            f'<div class="hp-fp-row" data-metric="{escape(r["metric"])}" '
            f'data-position="{escape(r["position"])}" style="display:flex;gap:10px;'
            'align-items:center;margin:3px 0">'
            f'<span class="hp-fp-label" style="width:230px;flex:none">{escape(r["label"])}</span>'
            '<span class="hp-fp-track" style="position:relative;flex:none;width:260px;'
            f'height:20px;background:#f4f6f8;border-radius:3px">{bands}{dot}</span>'
            f'<span class="hp-fp-value"><b>{value}</b> <span class="hp-note">'
            f"{escape(words)}</span></span></div>")
    return html(f'<p class="hp-note">This job (dot) among the {escape(where)}: light band '
                "10th-90th percentile, dark band the middle half, tick the median; green or "
                "red where the job is outside the middle half on the better or worse side."
                f'</p><div class="hp-footprint">{"".join(out)}</div>')
