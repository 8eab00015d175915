"""Bokeh plots shared by the pages: per-host lines, job mean, heatmaps, job bands.

Narrow jobs get one line per host plus the job-wide mean; wide jobs (more
than ``WIDE_HOSTS`` hosts, where lines become a hairball) get the mean with
its min-max spread and a host-by-time heatmap. Every plot has hover values
and zoom; frames arrive bucket-averaged from ``timeseries``.

Drawn as Bokeh figures directly, one ``ColumnDataSource`` per glyph: HoloViews'
option, range and model machinery took 4.3 of the 4.9 s a wide job's Network
tab needed on its first click (``benchmarks.dashboards --profile``); the same
plots built here take a small fraction of that (docs/dashboards.md, "Speed").
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import panel as pn
import polars as pl
from bokeh.layouts import column, row
from bokeh.models import (
    BoxAnnotation,
    ColorBar,
    ColumnDataSource,
    CustomJSTickFormatter,
    DataRange1d,
    FixedTicker,
    HoverTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    Range1d,
    Spacer,
)
from bokeh.palettes import Category10_10, Category20_20, Viridis256
from bokeh.plotting import figure

from dashboards.units import plot_scale
from hpcperfstats.report.presentation import EVENT_SCALE, event_label, event_scale

WIDE_HOSTS = 16
HEIGHT = 300
MEAN_LABEL = "job mean"
#: The legend entry of the dashed allocation line.
ALLOCATED_LABEL = "allocated per node"
#: Line colours: ten distinct ones up to ten lines, twenty (paired shades) up to twenty.
PALETTE = list(Category10_10)
WIDE_PALETTE = list(Category20_20)
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _naive(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("time").dt.replace_time_zone(None))


def _aligned(frame: pl.DataFrame, group: str = "host") -> pl.DataFrame:
    """Times rounded to the hosts' common step, for what combines hosts.

    Each node samples on its own clock: the same instant is 12:15:00.59 on one
    host and 12:15:00.83 on another, so grouping by exact time gives every
    instant one host (a "mean" that jumps between the hosts' values, a
    heatmap column per host with holes). The step is the median spacing of a
    host's points (whole seconds); points within half a step become one.
    """
    if frame.height < 2:
        return frame
    gaps = (frame.sort(group, "time")
            .select((pl.col("time").diff().over(group).dt.total_seconds()).alias("gap"))
            .drop_nulls().filter(pl.col("gap") > 0))
    step = int(round(gaps["gap"].median())) if gaps.height else 0
    if step < 2:
        return frame
    return frame.with_columns(pl.col("time").dt.round(f"{step}s"))


def _ylabel(label: str, axis_unit: str) -> str:
    return f"{label} ({axis_unit})" if axis_unit else label


def si_ticks() -> CustomJSTickFormatter:
    """Axis ticks with SI prefixes (``600k``, ``1.2M``), never ``6.000e+5``; a new model
    per plot (a Bokeh model lives in one document, and each page view is one)."""
    return CustomJSTickFormatter(code="""
        const a = Math.abs(tick);
        for (const [s, p] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']])
            if (a >= s) return parseFloat((tick / s).toPrecision(3)) + p;
        return String(parseFloat(tick.toPrecision(3)));
    """)


def _top(values: Any, reference: float | None) -> float:
    """The y axis' upper end: 8 % over the highest value or reference (1 when empty)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    high = max(float(finite.max()) if finite.size else 0.0, reference or 0.0)
    return high * 1.08 or 1.0


def _figure(title: str, axis_unit: str, xlabel: str, top: float | None,
            height: int = HEIGHT, x_axis_type: str = "datetime"):
    """A time plot (from 0 to ``top``; the data's range without it) with SI ticks, panned
    by drag and zoomed by scroll. The x range hugs the data (no padding)."""
    fig = figure(title=title, x_axis_type=x_axis_type, height=height,
                 sizing_mode="stretch_width", tools=TOOLS, active_drag="pan",
                 active_scroll="wheel_zoom", x_range=DataRange1d(range_padding=0),
                 y_range=Range1d(0, top) if top is not None else DataRange1d(),
                 x_axis_label=xlabel or None, y_axis_label=axis_unit or None,
                 toolbar_location="right")
    fig.yaxis.formatter = si_ticks()
    return fig


def _legend(fig: Any, items: list[LegendItem]) -> None:
    """The legend right of the data, never over it; a click on an entry dims its line."""
    if items:
        fig.add_layout(Legend(items=items, click_policy="mute", location="top_left"), "right")


def _hover(fig: Any, renderers: list[Any], what: str, axis: str, mode: str = "vline",
           extra: list[tuple[str, str]] | None = None) -> None:
    fig.add_tools(HoverTool(
        renderers=renderers, mode=mode, formatters={"@time": "datetime"},
        tooltips=[(what, "@host"), ("time", "@time{%F %H:%M}"),
                  (axis or "value", "@value{0.[00]a}"), *(extra or [])]))


def _allocated(fig: Any, times: np.ndarray, level: float) -> LegendItem:
    """The dashed allocation line across the plotted time, named in the legend."""
    line = fig.line([times.min(), times.max()], [level, level], line_color="#777",
                    line_dash="dashed", line_width=1.5, muted_alpha=0.2)
    return LegendItem(label=ALLOCATED_LABEL, renderers=[line])


def _source(frame: pl.DataFrame, host: str, **columns: Any) -> ColumnDataSource:
    """A line's own data: its frame's columns (``time``, ``value``, ...) and the name its
    hover shows."""
    return ColumnDataSource({**{c: frame[c].to_numpy() for c in frame.columns},
                             "host": [host] * frame.height, **columns})


def line_plot(title: str, lines: dict[str, pl.DataFrame], axis_unit: str, *, x: str = "time",
              xlabel: str = "", colour: str | None = None,
              extra: list[tuple[str, str]] | None = None):
    """Plain lines of ``value`` over ``x`` (time, or a number such as hours since a job's
    start), one per entry of ``lines``, named in a legend when there are several: the
    overview's cluster totals, the compare page's job means."""
    values = np.concatenate([f["value"].to_numpy() for f in lines.values()] or [[]])
    # from 0 for what cannot go below it: a flat total then reads as flat, not as a
    # zoomed-in axis of one repeated tick label
    low = np.nanmin(values) if values.size else 0.0
    fig = _figure(title, axis_unit, xlabel, _top(values, None) if low >= 0 else None,
                  x_axis_type="datetime" if x == "time" else "linear")
    items, drawn = [], []
    for i, (name, frame) in enumerate(lines.items()):
        line = fig.line(x, "value", source=_source(frame, name), line_width=2,
                        line_color=colour or PALETTE[i % len(PALETTE)], muted_alpha=0.2)
        items.append(LegendItem(label=name, renderers=[line]))
        drawn.append(line)
    where = ("time", "@time{%F %H:%M}") if x == "time" else (xlabel or x, f"@{{{x}}}{{0.[00]}}")
    fig.add_tools(HoverTool(renderers=drawn, mode="vline", formatters={"@time": "datetime"},
                            tooltips=[("", "@host"), where, (axis_unit or "value",
                                                             "@value{0.[00]a}"),
                                      *(extra or [])]))
    if len(lines) > 1:
        _legend(fig, items)
    return fig


def host_lines(
    part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
    xlabel: str = "", group: str = "host",
):
    """One line per ``group`` value plus the mean across them; a dashed reference line.

    One glyph per host (at most ``WIDE_HOSTS`` of them) rather than one
    ``multi_line``: each keeps its legend entry, its own hover and its own mute.
    """
    factor, axis_unit = plot_scale(unit)
    reference = reference / factor if reference else None
    # sorted so each host keeps its colour from plot to plot
    scaled = _naive(part).sort(group, "time").select(
        "time", group, (pl.col("value") / factor).alias("value"))
    fig = _figure(label, axis_unit, xlabel, _top(scaled["value"], reference))
    groups = scaled.partition_by(group, maintain_order=True, as_dict=True)
    palette = PALETTE if len(groups) <= len(PALETTE) else WIDE_PALETTE
    items, lines = [], []
    for i, ((name,), rows) in enumerate(groups.items()):
        line = fig.line("time", "value", source=_source(rows, str(name)), line_width=2,
                        line_color=palette[i % len(palette)], muted_alpha=0.2)
        items.append(LegendItem(label=str(name), renderers=[line]))
        lines.append(line)
    if len(groups) > 1:
        mean = (_aligned(scaled, group).group_by("time").agg(pl.col("value").mean())
                .sort("time"))
        line = fig.line("time", "value", source=_source(mean, MEAN_LABEL), line_color="black",
                        line_dash="dotted", line_width=2.5, muted_alpha=0.2)
        items.append(LegendItem(label=MEAN_LABEL, renderers=[line]))
    if reference and scaled.height:
        items.append(_allocated(fig, scaled["time"].to_numpy(), reference))
    _hover(fig, lines, group, axis_unit)
    _legend(fig, items)
    return fig


def spread(part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
           xlabel: str = ""):
    """Mean across hosts with the min-max band: a wide job in one glance."""
    factor, axis_unit = plot_scale(unit)
    reference = reference / factor if reference else None
    stats = (
        _aligned(_naive(part)).group_by("time")
        .agg((pl.col("value").mean() / factor).alias("value"),
             (pl.col("value").min() / factor).alias("low"),
             (pl.col("value").max() / factor).alias("high"))
        .drop_nulls().sort("time")
    )
    fig = _figure(label, axis_unit, xlabel, _top(stats["high"], reference))
    times = stats["time"].to_numpy()
    band = fig.patch(np.concatenate([times, times[::-1]]),
                     np.concatenate([stats["low"].to_numpy(), stats["high"].to_numpy()[::-1]]),
                     fill_color="#1f5f8b", fill_alpha=0.25, line_alpha=0, muted_alpha=0.1)
    mean = fig.line("time", "value", line_color="#1f5f8b", line_width=2, muted_alpha=0.2,
                    source=_source(stats, MEAN_LABEL))
    items = [LegendItem(label="min-max over hosts", renderers=[band]),
             LegendItem(label=MEAN_LABEL, renderers=[mean])]
    if reference and stats.height:
        items.append(_allocated(fig, times, reference))
    _hover(fig, [mean], "", axis_unit,
           extra=[("min", "@low{0.[00]a}"), ("max", "@high{0.[00]a}")])
    _legend(fig, items)
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway between neighbouring centres (the end cells as wide as their
    neighbours): what a mesh over sample times draws."""
    if centres.size == 1:
        return np.array([centres[0] - 500.0, centres[0] + 500.0])
    mid = (centres[:-1] + centres[1:]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def heatmap(part: pl.DataFrame, label: str, unit: str):
    """Hosts (rows) by time (columns), colour = value: idle or hot nodes stand out.

    One ``quad`` per cell (row ``i`` spans ``[i - 0.5, i + 0.5]``, hosts sorted
    bottom-up); cells without a sample are left out, so they show as gaps.
    """
    factor, axis_unit = plot_scale(unit)
    wide = (
        _aligned(_naive(part)).with_columns(pl.col("value") / factor)
        .pivot(on="host", index="time", values="value", aggregate_function="mean").sort("time")
    )
    hosts = sorted(c for c in wide.columns if c != "time")
    grid = wide.select(hosts).to_numpy().T.astype(float)  # hosts x times
    # the datetime axis counts milliseconds since the epoch
    times = wide["time"].to_numpy().astype("datetime64[ms]").astype(np.int64).astype(float)
    # colours from 0 for a quantity that cannot go below it: scaled to the data's own
    # range, sixteen busy cores read 15.9999 and 16.0001 as the two ends of the map and
    # a busy node looked idle in stripes (seen in the compute-bound demo job's screenshot)
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    clim = (0.0, high if high > 0 else 1.0) if low >= 0 else (low, max(high, low + 1e-12))
    edges = _edges(times)
    rows = np.repeat(np.arange(len(hosts)), len(times))
    keep = np.isfinite(grid.ravel())
    source = ColumnDataSource({
        "left": np.tile(edges[:-1], len(hosts))[keep],
        "right": np.tile(edges[1:], len(hosts))[keep],
        "bottom": (rows - 0.5)[keep], "top": (rows + 0.5)[keep],
        "value": grid.ravel()[keep],
        "host": np.repeat(np.array(hosts, dtype=object), len(times))[keep],
        "time": np.tile(times, len(hosts))[keep],
    })
    height = max(HEIGHT, min(12 * len(hosts), 700))
    step = max(1, math.ceil(len(hosts) * 16 / (height - 60)))  # ticks 16 px apart
    fig = figure(title=f"{label}: per host", x_axis_type="datetime", height=height,
                 sizing_mode="stretch_width", tools=TOOLS, active_drag="pan",
                 active_scroll="wheel_zoom", x_range=DataRange1d(range_padding=0),
                 y_range=Range1d(-0.5, max(len(hosts), 1) - 0.5), x_axis_label="time (UTC)",
                 y_axis_label="host", toolbar_location="right")
    mapper = LinearColorMapper(palette=Viridis256, low=clim[0], high=clim[1])
    cells = fig.quad(left="left", right="right", bottom="bottom", top="top", source=source,
                     fill_color={"field": "value", "transform": mapper}, line_color=None,
                     name="heatmap")
    fig.yaxis.ticker = FixedTicker(ticks=list(range(0, len(hosts), step)))
    fig.yaxis.major_label_overrides = {i: h for i, h in enumerate(hosts)}
    fig.grid.visible = False
    fig.add_layout(ColorBar(color_mapper=mapper, title=axis_unit or None,
                            formatter=si_ticks()), "right")
    _hover(fig, [cells], "host", _ylabel(label, axis_unit), mode="mouse")
    return fig


def series_plot(part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
                xlabel: str = "", per_host: bool = True) -> list[Any]:
    """The plots for one series: lines for narrow jobs, spread + heatmap for wide ones
    (no heatmap with ``per_host=False``: the page shows that one elsewhere)."""
    if part["host"].n_unique() > WIDE_HOSTS:
        wide = [spread(part, label, unit, reference=reference, xlabel=xlabel)]
        return [*wide, heatmap(part, label, unit)] if per_host else wide
    return [host_lines(part, label, unit, reference=reference, xlabel=xlabel)]


def raw_event(part: pl.DataFrame, type_: str, event: str, unit: str | None
              ) -> tuple[pl.DataFrame, str, str]:
    """A raw type's event ready to plot: values in its own scale (load /100), a human
    title (``NUMA accesses: local node``) and the unit its axis shows."""
    factor, axis_unit = event_scale(type_, event, unit)
    if (type_, event) in EVENT_SCALE:  # already in display scale: no unit scaling after
        return part.with_columns(pl.col("value") / factor), event_label(type_, event), ""
    return part, event_label(type_, event), unit or ""


def job_bands(fig: Any, jobs: list[dict[str, Any]], end: datetime):
    """Shade each job's run time on a host plot (alternating colours), each band labelled
    with its job id and user at the foot of the plot."""
    colours = ["#f5b041", "#5dade2"]
    for i, job in enumerate(jobs):
        start = job["start_time"].replace(tzinfo=None)
        stop = (job["end_time"] or end).replace(tzinfo=None)
        fig.add_layout(BoxAnnotation(left=start, right=stop, fill_color=colours[i % 2],
                                     fill_alpha=0.15, line_alpha=0))
        label = f" {job['jobid']} {job.get('username') or ''}".rstrip()
        fig.text(x=[start], y=[0], text=[label], text_align="left", text_baseline="bottom",
                 text_font_size="9pt", text_color="#444")
    return fig


def stack(figures: list[Any], cols: int = 1) -> pn.pane.Bokeh:
    """Plots one above the other (or ``cols`` side by side), their time axes moving
    together: one pane, so a tab or card is one Bokeh root."""
    for fig in figures[1:]:
        fig.x_range = figures[0].x_range
    if cols > 1:
        rows = [figures[i:i + cols] for i in range(0, len(figures), cols)]
        # a last, shorter row keeps its plots as wide as the rows above
        rows[-1] += [Spacer(sizing_mode="stretch_width") for _ in range(cols - len(rows[-1]))]
        layout = column([row(r, sizing_mode="stretch_width") for r in rows],
                        sizing_mode="stretch_width")
    else:
        layout = column(figures, sizing_mode="stretch_width")
    return pn.pane.Bokeh(layout, sizing_mode="stretch_width")

