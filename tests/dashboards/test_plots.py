"""The shared Bokeh plots (``dashboards/plots.py``) hold what a person reads: a line
per host with its legend entry, the job mean, the labelled allocation line, the
min-max band of a wide job, SI ticks and the legend outside the data. Values
worked out by hand on small frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from bokeh.models import BoxAnnotation, CustomJSTickFormatter, GlyphRenderer, Legend

from dashboards.plots import (
    ALLOCATED_LABEL,
    MEAN_LABEL,
    host_lines,
    job_bands,
    line_plot,
    series_plot,
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
GIB = 2**30


def frame(values: dict[str, list[float]], step_s: int = 300) -> pl.DataFrame:
    return pl.DataFrame([{"time": T0 + timedelta(seconds=step_s * i), "host": host, "value": v}
                         for host, vs in values.items() for i, v in enumerate(vs)])


def glyphs(fig) -> list[GlyphRenderer]:
    return [r for r in fig.renderers if isinstance(r, GlyphRenderer)]


def lines(fig) -> list[GlyphRenderer]:
    return [r for r in glyphs(fig) if type(r.glyph).__name__ == "Line"]


def legend_labels(fig) -> list[str]:
    (legend,) = [x for x in fig.right if isinstance(x, Legend)]  # right of the data
    assert not [x for x in fig.center if isinstance(x, Legend)]  # never over it
    return [item.label.value for item in legend.items]


def test_host_lines_draw_each_host_the_mean_and_the_labelled_allocation():
    # three hosts of 8 cores; busy cores 2, 4 and 9 at every sample: mean (2 + 4 + 9) / 3 = 5
    fig = host_lines(frame({"a": [2, 2, 2], "b": [4, 4, 4], "c": [9, 9, 9]}),
                     "CPU cores busy", "cores", reference=8.0)
    drawn = lines(fig)
    assert len(drawn) == 3 + 1 + 1  # one per host, the mean, the allocation
    by_label = {item.label.value: item.renderers[0] for item in
                next(x for x in fig.right if isinstance(x, Legend)).items}
    assert legend_labels(fig) == ["a", "b", "c", MEAN_LABEL, ALLOCATED_LABEL]
    for host, value in (("a", 2.0), ("b", 4.0), ("c", 9.0)):
        data = by_label[host].data_source.data
        assert list(data["value"]) == [value] * 3 and set(data["host"]) == {host}
    assert list(by_label[MEAN_LABEL].data_source.data["value"]) == [5.0] * 3
    assert by_label[MEAN_LABEL].glyph.line_dash == [2, 4]  # dotted
    allocated = by_label[ALLOCATED_LABEL]
    assert list(allocated.data_source.data["y"]) == [8.0, 8.0]
    assert allocated.glyph.line_dash == [6]  # dashed
    assert fig.y_range.start == 0 and fig.y_range.end == 9 * 1.08  # from 0, over the top
    assert isinstance(fig.yaxis[0].formatter, CustomJSTickFormatter)  # SI: 600k, not 6e5
    assert fig.title.text == "CPU cores busy"


def test_host_lines_scale_bytes_to_gib_and_one_host_has_no_mean():
    fig = host_lines(frame({"a": [4 * GIB, 6 * GIB]}), "Memory used", "B",
                     reference=16 * GIB)
    assert legend_labels(fig) == ["a", ALLOCATED_LABEL]  # no "mean" of one line
    assert list(lines(fig)[0].data_source.data["value"]) == [4.0, 6.0]  # GiB on the axis
    assert fig.yaxis[0].axis_label == "GiB"


def test_a_wide_job_gets_the_mean_and_its_min_max_band():
    hosts = {f"h{i:02d}": [float(i), float(i + 1)] for i in range(20)}  # 0..19, then 1..20
    (band, heat) = series_plot(frame(hosts), "CPU cores busy", "cores", reference=32.0)
    assert heat.title.text == "CPU cores busy: per host"
    assert legend_labels(band) == ["min-max over hosts", MEAN_LABEL, ALLOCATED_LABEL]
    patch = next(r for r in glyphs(band) if type(r.glyph).__name__ == "Patch")
    # the band's outline: min forwards (0, 1), max backwards (20, 19)
    assert list(patch.data_source.data["y"]) == [0.0, 1.0, 20.0, 19.0]
    mean = lines(band)[0].data_source.data
    assert list(mean["value"]) == [9.5, 10.5]  # (0 + ... + 19) / 20, (1 + ... + 20) / 20
    assert list(mean["low"]) == [0.0, 1.0] and list(mean["high"]) == [19.0, 20.0]
    assert series_plot(frame(hosts), "x", "cores", per_host=False)[0].title.text == "x"
    assert len(series_plot(frame(hosts), "x", "cores", per_host=False)) == 1


def test_job_bands_shade_and_label_each_job():
    fig = host_lines(frame({"c001": [1, 2, 3]}), "CPU cores busy", "cores")
    jobs = [{"jobid": "1001", "username": "alice", "start_time": T0,
             "end_time": T0 + timedelta(minutes=5)},
            {"jobid": "1002", "username": None, "start_time": T0 + timedelta(minutes=5),
             "end_time": None}]
    job_bands(fig, jobs, T0 + timedelta(minutes=10))
    texts = [r.data_source.data["text"][0] for r in glyphs(fig)
             if type(r.glyph).__name__ == "Text"]
    assert texts == [" 1001 alice", " 1002"]
    boxes = [b for b in fig.center if isinstance(b, BoxAnnotation)]
    assert [b.right for b in boxes] == [datetime(2026, 3, 1, 10, 5),
                                        datetime(2026, 3, 1, 10, 10)]  # a running job: to end


def test_line_plot_names_several_lines_in_a_legend_and_one_line_not():
    one = line_plot("CPU, cluster total", {"x": frame({"a": [1, 2]}).drop("host")}, "cores")
    assert not [x for x in one.right if isinstance(x, Legend)]
    hours = pl.DataFrame({"hours": [0.0, 1.0], "value": [3.0, 4.0]})
    two = line_plot("CPU (mean over hosts)", {"job 1": hours, "job 2": hours}, "cores",
                    x="hours", xlabel="hours since start")
    assert legend_labels(two) == ["job 1", "job 2"]
    assert np.array_equal(lines(two)[1].data_source.data["hours"], [0.0, 1.0])
