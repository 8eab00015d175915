"""HoloViews plots shared by the pages: per-host lines, job mean, heatmaps, job bands.

Narrow jobs get one line per host plus the job-wide mean; wide jobs (more
than ``WIDE_HOSTS`` hosts, where lines become a hairball) get the mean with
its min-max spread and a host-by-time heatmap. Every plot has hover values
and zoom; frames arrive bucket-averaged from ``timeseries``.
"""

from __future__ import annotations

import math
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (the backend: .opts() fails without it)
import hvplot.pandas  # noqa: F401  (registers the .hvplot accessor)
import numpy as np
import polars as pl
from bokeh.models import CustomJSTickFormatter

from dashboards.units import plot_scale
from hpcperfstats.report.presentation import EVENT_SCALE, event_label, event_scale

WIDE_HOSTS = 16
HEIGHT = 300
MEAN_LABEL = "job mean"
#: The legend entry of the dashed allocation line.
ALLOCATED_LABEL = "allocated per node"


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


def _allocated(times: Any, ycol: str, level: float) -> hv.Curve:
    """The dashed allocation line across the plotted time, named in the legend."""
    first, last = times.min(), times.max()
    return hv.Curve([(first, level), (last, level)], "time", ycol,
                    label=ALLOCATED_LABEL).opts(color="#777", line_dash="dashed",
                                                line_width=1.5)


def host_lines(
    part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
    xlabel: str = "", group: str = "host",
) -> hv.Element:
    """One line per ``group`` value plus the mean across them; a dashed reference line."""
    factor, axis_unit = plot_scale(unit)
    ycol = _ylabel(label, axis_unit)
    reference = reference / factor if reference else None
    # sorted so each host keeps its colour from plot to plot
    scaled = _naive(part).sort(group, "time").select(
        "time", group, (pl.col("value") / factor).alias(ycol))
    frame = scaled.to_pandas()
    top = max(float(frame[ycol].max() or 0.0), reference or 0.0) * 1.08 or 1.0
    plot = frame.hvplot.line(
        x="time", y=ycol, by=group, title=label, ylabel=axis_unit, xlabel=xlabel,
        responsive=True, height=HEIGHT, legend="right", ylim=(0, top), hover="vline",
    )
    if scaled[group].n_unique() > 1:
        mean = (_aligned(scaled, group).group_by("time").agg(pl.col(ycol).mean())
                .sort("time").to_pandas())
        plot = plot * hv.Curve(mean, "time", ycol, label=MEAN_LABEL).opts(
            color="black", line_dash="dotted", line_width=2.5)
    if reference:
        plot = plot * _allocated(frame["time"], ycol, reference)
    # an overlay takes Bokeh's default (inside, over the data) unless told again
    if isinstance(plot, hv.Overlay):
        plot = plot.opts(legend_position="right")
    return plot.opts(yformatter=si_ticks())


def spread(part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
           xlabel: str = "") -> hv.Element:
    """Mean across hosts with the min-max band: a wide job in one glance."""
    factor, axis_unit = plot_scale(unit)
    ycol = _ylabel(label, axis_unit)
    reference = reference / factor if reference else None
    # named per series: HoloViews links axes of equally named dimensions
    low, high = f"{ycol} min", f"{ycol} max"
    stats = (
        _aligned(_naive(part)).group_by("time")
        .agg((pl.col("value").mean() / factor).alias(ycol),
             (pl.col("value").min() / factor).alias(low),
             (pl.col("value").max() / factor).alias(high))
        .sort("time").to_pandas()
    )
    band = hv.Area(stats, "time", [low, high], label="min-max over hosts").opts(
        alpha=0.25, color="#1f5f8b", line_alpha=0)
    mean = hv.Curve(stats, "time", ycol, label=MEAN_LABEL).opts(
        color="#1f5f8b", line_width=2, tools=["hover"])
    top = max(float(stats[high].max() or 0.0), reference or 0.0) * 1.08 or 1.0
    layers = [band, mean]
    if reference:
        layers.append(_allocated(stats["time"], ycol, reference))
    return hv.Overlay(layers).opts(title=label, ylabel=axis_unit, xlabel=xlabel, responsive=True,
                                   height=HEIGHT, ylim=(0, top), legend_position="right",
                                   yformatter=si_ticks())


def heatmap(part: pl.DataFrame, label: str, unit: str) -> hv.Element:
    """Hosts (rows) by time (columns), colour = value: idle or hot nodes stand out."""
    factor, axis_unit = plot_scale(unit)
    wide = (
        _aligned(_naive(part)).with_columns(pl.col("value") / factor)
        .pivot(on="host", index="time", values="value", aggregate_function="mean").sort("time")
    )
    hosts = sorted(c for c in wide.columns if c != "time")
    grid = wide.select(hosts).to_numpy().T.astype(float)  # hosts x times
    times = wide["time"].to_numpy()
    if len(times) < 2:
        times = np.concatenate([times, times + np.timedelta64(1, "s")])
        grid = np.repeat(grid, 2, axis=1)
    zlabel = _ylabel(label, axis_unit)
    # colours from 0 for a quantity that cannot go below it: scaled to the data's own
    # range, sixteen busy cores read 15.9999 and 16.0001 as the two ends of the map and
    # a busy node looked idle in stripes (seen in the compute-bound demo job's screenshot)
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    clim = (0.0, high if high > 0 else 1.0) if low >= 0 else (low, max(high, low + 1e-12))
    height = max(HEIGHT, min(12 * len(hosts), 700))
    step = max(1, math.ceil(len(hosts) * 16 / (height - 60)))  # ticks 16 px apart
    ticks = [(i, h) for i, h in enumerate(hosts)][::step]
    return hv.QuadMesh((times, np.arange(len(hosts)), grid), ["time", "host index"], [zlabel]
                       ).opts(
        title=f"{label}: per host", cmap="viridis", colorbar=True, tools=["hover"], clim=clim,
        responsive=True, height=height, yticks=ticks,
        ylabel="host", xlabel="time (UTC)", clabel=axis_unit,
    )


def series_plot(part: pl.DataFrame, label: str, unit: str, *, reference: float | None = None,
                xlabel: str = "", per_host: bool = True) -> list[hv.Element]:
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


def job_bands(plot: hv.Element, jobs: list[dict[str, Any]], end: Any) -> hv.Element:
    """Shade each job's run time on a host plot (alternating colours), each band labelled
    with its job id and user at the foot of the plot."""
    colours = ["#f5b041", "#5dade2"]
    for i, job in enumerate(jobs):
        start = job["start_time"].replace(tzinfo=None)
        stop = (job["end_time"] or end).replace(tzinfo=None)
        plot = plot * hv.VSpan(start, stop).opts(color=colours[i % 2], alpha=0.15)
        label = f" {job['jobid']} {job.get('username') or ''}".rstrip()
        plot = plot * hv.Text(start, 0, label).opts(
            text_align="left", text_baseline="bottom", text_font_size="9pt",
            text_color="#444")
    return plot
