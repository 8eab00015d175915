"""Raw counter values -> per-interval rates and gauges, the ``host_data`` rows.

Rules (DESIGN.md, issue "Ingest"):
- ``E`` events are counters: value = delta / interval in SI units per second;
  other events are gauges, kept as they are (no deltas of gauges).
- A counter narrower than 64 bits that goes down rolled over: delta + 2^W.
- A counter that goes down otherwise, or samples from different boots
  (header ``$uptime``), start a new series: no rate for that interval,
  rather than a huge or negative one.
- Devices are summed per host where ``host_types`` says so; an interval
  where any summed device lacks a delta is left out, never under-counted.
"""

from __future__ import annotations

import polars as pl

from hpcperfstats.host_types import RULES, rule
from hpcperfstats.units import rate_unit

#: Two headers whose boot times differ by more than this are different boots.
BOOT_TOLERANCE_S = 120.0

HOST_DATA_COLUMNS = ["time", "host", "jobid", "type", "device", "event", "unit", "value", "delta"]

SERIES_KEY = ["host", "type", "device", "event"]


def counter_deltas(long: pl.DataFrame) -> pl.DataFrame:
    """Add ``dt`` and ``delta`` (raw units) to a long frame, per series."""
    frame = long.sort([*SERIES_KEY, "time"])
    prev = [pl.col(c).shift(1).over(SERIES_KEY) for c in ("time", "raw", "boot")]
    frame = frame.with_columns(
        prev[0].alias("_ptime"), prev[1].alias("_praw"), prev[2].alias("_pboot")
    )
    same_boot = (
        pl.col("boot").is_null()
        | pl.col("_pboot").is_null()
        | ((pl.col("boot") - pl.col("_pboot")).abs() <= BOOT_TOLERANCE_S)
    )
    diff = pl.col("raw") - pl.col("_praw")
    wrap = pl.lit(2.0).pow(pl.col("width").cast(pl.Float64))
    delta = (
        pl.when(pl.col("_praw").is_null() | ~same_boot)
        .then(None)
        .when(diff >= 0)
        .then(diff)
        .when(pl.col("width") < 64)
        .then(diff + wrap)
        .otherwise(None)
    )
    return frame.with_columns(
        (pl.col("time") - pl.col("_ptime")).alias("dt"),
        pl.when(pl.col("cumulative")).then(delta).otherwise(None).alias("delta"),
    ).drop("_ptime", "_praw", "_pboot")


def host_rows(
    long: pl.DataFrame, start: float | None = None, end: float | None = None
) -> pl.DataFrame:
    """The ``host_data`` rows for samples with start <= time < end.

    ``long`` should reach back one sample interval before ``start`` (or more)
    so the first sample in the window has a predecessor to difference against.
    """
    skip = [t for t, r in RULES.items() if r.skip]
    frame = long.filter(~pl.col("type").is_in(skip))
    excluded = pl.lit(False)
    for type_, r in RULES.items():
        if r.exclude_devices:
            excluded = excluded | (
                (pl.col("type") == type_) & pl.col("device").is_in(list(r.exclude_devices))
            )
    frame = counter_deltas(frame.filter(~excluded))
    if start is not None:
        frame = frame.filter(pl.col("time") >= start)
    if end is not None:
        frame = frame.filter(pl.col("time") < end)
    frame = frame.with_columns(
        pl.when(pl.col("cumulative"))
        .then(pl.col("delta") * pl.col("factor"))
        .otherwise(None)
        .alias("delta"),
        pl.when(pl.col("cumulative"))
        .then(pl.col("delta") * pl.col("factor") / pl.col("dt"))
        .otherwise(pl.col("raw") * pl.col("factor"))
        .alias("value"),
        pl.when(~pl.col("cumulative"))
        .then(pl.col("si_unit"))
        .when(pl.col("si_unit") == "")
        .then(pl.lit(rate_unit("")))
        .otherwise(pl.col("si_unit") + "/s")
        .alias("unit"),
    )
    aggregated = [t for t in frame["type"].unique().to_list() if rule(t).aggregate]
    summed = (
        frame.filter(pl.col("type").is_in(aggregated))
        .group_by(["host", "time", "type", "event"])
        .agg(
            pl.col("jobid").first(),
            pl.col("unit").first(),
            pl.col("cumulative").first(),
            pl.when(pl.col("value").null_count() == 0).then(pl.col("value").sum()).alias("value"),
            pl.when(pl.col("delta").null_count() == 0).then(pl.col("delta").sum()).alias("delta"),
        )
        .with_columns(pl.lit("").alias("device"))
    )
    kept = frame.filter(~pl.col("type").is_in(aggregated))
    out = pl.concat(
        [summed.select([*HOST_DATA_COLUMNS, "cumulative"]),
         kept.select([*HOST_DATA_COLUMNS, "cumulative"])],
        how="vertical",
    )
    # a counter row without a delta is the start of a series: nothing to report
    out = out.filter(~(pl.col("cumulative") & pl.col("delta").is_null())).drop("cumulative")
    out = out.with_columns(
        pl.from_epoch((pl.col("time") * 1_000_000).round().cast(pl.Int64), time_unit="us")
        .dt.replace_time_zone("UTC")
        .alias("time")
    )
    return out.sort(["host", "time", "type", "device", "event"]).select(HOST_DATA_COLUMNS)
