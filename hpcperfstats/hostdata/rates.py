"""Raw counter values -> per-interval rates and gauges, the ``host_data`` rows.

Rules (DESIGN.md, issue "Ingest"):
- ``E`` events are counters: value = delta / interval in SI units per second;
  other events are gauges, kept as they are (no deltas of gauges).
- A counter narrower than 64 bits that goes down rolled over: delta + 2^W.
- A counter that goes down otherwise, or samples from different boots
  (header ``$uptime``), start a new series: no rate for that interval,
  rather than a huge or negative one.
- Devices are summed per host where ``host_types`` says so (and kept as
  well for per-device types); an interval where any summed device lacks a
  delta is left out, never under-counted.
"""

from __future__ import annotations

import polars as pl

from hpcperfstats.db.tables import HOST_DATA
from hpcperfstats.hostdata.types import RULES, rule
from hpcperfstats.hostdata.units import rate_unit

#: Two headers whose boot times differ by more than this are different boots.
BOOT_TOLERANCE_S = 120.0


def epoch_utc(seconds: pl.Expr) -> pl.Expr:
    """Epoch seconds (float) as a UTC microsecond timestamp, rounded, not truncated."""
    return (pl.from_epoch((seconds * 1_000_000).round().cast(pl.Int64), time_unit="us")
            .dt.replace_time_zone("UTC"))


def same_boot(boot: pl.Expr, previous: pl.Expr) -> pl.Expr:
    """The reboot rule: two samples are of one boot unless both boot times are
    known and differ by more than ``BOOT_TOLERANCE_S`` (a counter reset)."""
    return boot.is_null() | previous.is_null() | ((boot - previous).abs() <= BOOT_TOLERANCE_S)

#: Widths (bits) of kernel counters narrower than 64 bits, by (type, event),
#: for schemas that declare no ``W=`` (TACC's C monitor declares none). The
#: /proc/diskstats tick fields are printed from 32-bit ``unsigned int``s
#: (block/genhd.c ``diskstats_show``) and wrap after 2^32 ms, ~49.7 days;
#: the other fields there, and /proc/stat, /proc/vmstat and sysfs net
#: statistics, are 64-bit on 64-bit kernels. docs/host-data.md lists them.
KERNEL_WIDTHS: dict[tuple[str, str], int] = {
    ("block", "rd_ticks"): 32,
    ("block", "wr_ticks"): 32,
    ("block", "io_ticks"): 32,
    ("block", "time_in_queue"): 32,
    ("block", "discard_ticks"): 32,
    ("block", "flush_ticks"): 32,
}


def counter_width(type_: str, event: str, declared: int | None) -> int:
    """Roll-over width of a counter: the schema's ``W=``, else the kernel's, else 64."""
    if declared is not None:
        return declared
    return KERNEL_WIDTHS.get((type_, event), 64)

#: the columns of a computed host_data frame: the table's (the loader adds
#: ``cluster``) and ``delta``, the increase in SI units, which checks read but
#: the table does not keep (``value`` times the interval; migration 5)
HOST_DATA_COLUMNS = [*HOST_DATA.schema, "delta"]

SERIES_KEY = ["host", "type", "device", "event"]


def counter_deltas(long: pl.DataFrame) -> pl.DataFrame:
    """Add ``dt`` and ``delta`` (raw units) to a long frame, per series.

    Rows are sorted by a 64-bit hash of the series key and time (faster than
    sorting four string columns, and faster here than sorting a narrow frame
    and scattering back); the previous row belongs to the same series only
    where all four key columns are equal, so a hash collision can cost a
    delta, never produce a wrong one.
    """
    frame = long.with_columns(pl.struct(SERIES_KEY).hash().alias("_h")).sort("_h", "time")
    same_series = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in SERIES_KEY])
    frame = frame.with_columns(
        pl.when(same_series).then(pl.col("time").shift(1)).alias("_ptime"),
        pl.when(same_series).then(pl.col("raw").shift(1)).alias("_praw"),
        pl.col("boot").shift(1).alias("_pboot"),
    )
    one_boot = same_boot(pl.col("boot"), pl.col("_pboot"))
    diff = pl.col("raw") - pl.col("_praw")
    wrap = pl.lit(2.0).pow(pl.col("width").cast(pl.Float64))
    delta = (
        pl.when(pl.col("_praw").is_null() | ~one_boot)
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
    ).drop("_h", "_ptime", "_praw", "_pboot")


def _device_filter(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop skipped types and excluded devices (loopback) before any maths."""
    skip = [t for t, r in RULES.items() if r.skip]
    excluded = pl.lit(False)
    for type_, r in RULES.items():
        if r.exclude_devices:
            excluded = excluded | (
                (pl.col("type") == type_) & pl.col("device").is_in(list(r.exclude_devices))
            )
    return frame.filter(~pl.col("type").is_in(skip) & ~excluded)


def _split_by_rule(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to sum into device '', rows kept per device) by ``host_types``."""
    types = frame["type"].unique().to_list()
    summed = [t for t in types if rule(t).aggregate]
    kept = [t for t in types if not rule(t).aggregate or rule(t).per_device]
    unsummed = pl.lit(False)
    for t in summed:
        if rule(t).unsummed:
            unsummed = unsummed | ((pl.col("type") == t)
                                   & pl.col("event").is_in(list(rule(t).unsummed)))
    to_sum = frame.filter(pl.col("type").is_in(summed) & ~unsummed)
    per_device = frame.filter(pl.col("type").is_in(kept) | unsummed)
    return to_sum, per_device


def host_rows(
    long: pl.DataFrame, start: float | None = None, end: float | None = None
) -> pl.DataFrame:
    """The ``host_data`` rows (and each counter's ``delta``) for samples with
    start <= time < end.

    ``long`` should reach back one sample interval before ``start`` (or more)
    so the first sample in the window has a predecessor to difference against.
    """
    frame = counter_deltas(_device_filter(long))
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
    )
    to_sum, per_device = _split_by_rule(frame)
    summed = (
        to_sum.group_by(["host", "time", "type", "event"])
        .agg(
            pl.col("jobid").first(),
            pl.col("si_unit").first(),
            pl.col("cumulative").first(),
            pl.when(pl.col("value").null_count() == 0).then(pl.col("value").sum()).alias("value"),
            pl.when(pl.col("delta").null_count() == 0).then(pl.col("delta").sum()).alias("delta"),
        )
        .with_columns(pl.lit("").alias("device"))
    )
    columns = [c for c in HOST_DATA_COLUMNS if c != "unit"] + ["si_unit", "cumulative"]
    out = pl.concat([summed.select(columns), per_device.select(columns)], how="vertical")
    # a counter row without a delta is the start of a series: nothing to report
    out = out.filter(~(pl.col("cumulative") & pl.col("delta").is_null()))
    # the unit, on the (fewer) output rows: a counter's is a rate of its SI unit
    out = out.with_columns(
        pl.when(~pl.col("cumulative"))
        .then(pl.col("si_unit"))
        .when(pl.col("si_unit") == "")
        .then(pl.lit(rate_unit("")))
        .otherwise(pl.col("si_unit") + "/s")
        .alias("unit"),
    ).drop("cumulative", "si_unit")
    out = out.with_columns(epoch_utc(pl.col("time")).alias("time"))
    return out.sort(["host", "time", "type", "device", "event"]).select(HOST_DATA_COLUMNS)
