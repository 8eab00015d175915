"""Plots that combine hosts line their samples up first.

Found by looking at the idle-nodes job's screenshot: each node samples on its
own clock (12:15:00.59 on one host, 12:15:00.83 on another), so a "job mean"
grouped by exact time jumped between 16 and 0 cores at every sample and the
heatmap had a hole in every other column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from dashboards.plots import _aligned, heatmap

T0 = datetime(2026, 11, 20, 12, 15, tzinfo=UTC)


def two_hosts(samples: int = 6) -> pl.DataFrame:
    rows = [{"time": T0 + timedelta(seconds=300 * k + off), "host": host, "value": value}
            for host, off, value in (("busy", 0.59, 16.0), ("idle", 0.83, 0.0))
            for k in range(samples)]
    return pl.DataFrame(rows)


def test_the_mean_of_two_clocks_is_taken_at_each_instant():
    mean = _aligned(two_hosts()).group_by("time").agg(pl.col("value").mean(), pl.len())
    assert mean["len"].to_list() == [2] * 6  # both hosts at every instant, not one
    assert mean["value"].to_list() == [8.0] * 6  # (16 + 0) / 2, never 16 or 0


def cells(fig) -> dict[str, np.ndarray]:
    """The heatmap's drawn cells (its quads' columns)."""
    return {k: np.asarray(v) for k, v in fig.select_one({"name": "heatmap"}).data_source.data
            .items()}


def clim(fig) -> tuple[float, float]:
    mapper = fig.select_one({"name": "heatmap"}).glyph.fill_color.transform
    return mapper.low, mapper.high


def test_the_heatmap_has_a_cell_for_every_host_at_every_instant():
    drawn = cells(heatmap(two_hosts(), "CPU cores busy", "cores"))
    assert len(drawn["value"]) == 12  # two hosts x six instants (not twelve instants)
    assert len(set(drawn["left"].tolist())) == 6
    assert not np.isnan(drawn["value"]).any()
    # rows bottom-up in host order, each one unit high: busy (row 0) 16 cores, idle 0
    for host, row, value in (("busy", 0, 16.0), ("idle", 1, 0.0)):
        mine = drawn["host"] == host
        assert set(drawn["bottom"][mine].tolist()) == {row - 0.5}
        assert set(drawn["top"][mine].tolist()) == {row + 0.5}
        assert set(drawn["value"][mine].tolist()) == {value}
    # cells meet halfway between samples 300 s apart: each 300 s (300,000 ms) wide
    assert set((drawn["right"] - drawn["left"]).tolist()) == {300_000.0}


def test_irregular_or_single_points_are_left_alone():
    one = two_hosts(1)
    assert _aligned(one).equals(one)  # no spacing to learn from: times unchanged


def test_the_heatmap_colours_start_at_zero_so_float_noise_is_not_a_stripe():
    """Sixteen busy cores computed from counters read 15.9999 or 16.0001: coloured over
    the data's own range those were the two ends of the map, and a busy node showed
    idle-looking stripes. The scale starts at 0 for quantities that cannot go below."""
    frame = two_hosts().with_columns(
        pl.when(pl.col("host") == "idle").then(16.0 - 1e-9).otherwise(16.0 + 1e-9)
        .alias("value"))
    low, high = clim(heatmap(frame, "CPU cores busy", "cores"))
    assert low == 0.0 and high == 16.0 + 1e-9
    signed = two_hosts().with_columns(pl.col("value") - 8.0)  # -8 and 8: the data's range
    assert clim(heatmap(signed, "x", "")) == (-8.0, 8.0)
