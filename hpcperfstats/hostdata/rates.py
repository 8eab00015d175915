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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from hpcperfstats.db.tables import HOST_DATA
from hpcperfstats.hostdata.types import RULES, rule
from hpcperfstats.hostdata.units import rate_unit, to_si

if TYPE_CHECKING:
    from hpcperf_monitor.rawformat import Event

    from hpcperfstats.hostdata.frames import WidePart

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


def host_rows_of_parts(parts: Sequence[WidePart], start: float | None = None,
                       end: float | None = None, since: float | None = None) -> pl.DataFrame:
    """:func:`host_rows` of the values in ``parts`` (samples at or after
    ``since``), worked out per type on the wide frames.

    The same rules as ``host_rows``, but a sample's devices stay one row with
    one column per event, so sorting, differencing and summing touch about
    ten times fewer rows and no per-value strings: the host_data hot path.
    A type read with more than one list of events (a header changed its
    schema) goes through ``host_rows`` on the long frame, where a series
    skips the samples that lack its event.
    """
    from hpcperfstats.hostdata.frames import (  # frames imports this module
        META,
        WidePart,
        long_of_parts,
    )

    by_type: dict[str, list[WidePart]] = {}
    for part in parts:
        if not rule(part.type).skip:
            by_type.setdefault(part.type, []).append(part)
    out = []
    for type_, group in sorted(by_type.items()):  # types in name order (see the sort below)
        if since is not None:
            group = [WidePart(p.type, p.events, p.frame.filter(pl.col("time") >= since))
                     for p in group]
        if len({_meta_key(type_, p.events) for p in group}) > 1:
            rows = host_rows(long_of_parts(group), start, end)
        else:
            frame = pl.concat([p.frame.select(*META, *p.columns) for p in group],
                              how="vertical")
            rows = _type_rows(type_, group[0].events, frame, start, end)
        out.append(rows)
    if not out:
        return _no_rows()
    rows = pl.concat(out, how="vertical")
    # each type's rows come in name order within a sample (device, then event),
    # the types in name order: a stable sort by sample gives the order of the
    # whole key (host, time, type, device, event) at a third of its cost
    return rows.sort(["host", "time"], maintain_order=True).select(HOST_DATA_COLUMNS)


def _no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={**HOST_DATA.schema, "delta": pl.Float64}).select(
        HOST_DATA_COLUMNS)


def _meta_key(type_: str, events: Sequence[Event]) -> tuple:
    """What the rate step uses of a list of events: same key, same rows."""
    return tuple((e.name, e.cumulative, counter_width(type_, e.name, e.width),
                  to_si(e.unit, e.multiplier)) for e in events)


def _type_rows(type_: str, events: Sequence[Event], frame: pl.DataFrame,
               start: float | None, end: float | None) -> pl.DataFrame:
    """host_data rows of one type from its wide frame (META + v0, v1...).

    The arithmetic runs on the (rows x events) value matrix in numpy: a
    handful of whole-matrix operations whatever the number of events, where
    one polars expression per event costs more in planning than in work.
    Validity travels as boolean masks, never as NaN.
    """
    r = rule(type_)
    if r.exclude_devices:
        frame = frame.filter(~pl.col("device").is_in(list(r.exclude_devices)))
    if not frame.height:
        return _no_rows()
    cols = [f"v{i}" for i in range(len(events))]
    # integer codes of host (any codes do: equality is all it carries) and of
    # device (in name order: a sample's rows come out in device order)
    devices = pl.Enum(frame["device"].drop_nulls().unique().sort())
    keys = frame.select(pl.col("host").cast(pl.Categorical).to_physical(),
                        pl.col("device").cast(devices).to_physical(),
                        "time", pl.col("boot").fill_null(np.nan))
    host, device, t, boot = (keys[c].to_numpy() for c in ("host", "device", "time", "boot"))
    order = np.lexsort((t, device, host))  # series (host, device) in time order
    host, device, t, boot = host[order], device[order], t[order], boot[order]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = (host[1:] == host[:-1]) & (device[1:] == device[:-1])
    same &= pl.select(same_boot(pl.lit(boot).fill_nan(None),
                                pl.lit(boot).fill_nan(None).shift(1))).to_series().to_numpy()
    # (events x rows), C-ordered: every per-event operation runs on a
    # contiguous row. Few temporaries: each new matrix costs page faults
    # worth more than the arithmetic on it.
    raw = frame.select(pl.col(cols).fill_null(0.0)).to_numpy().T.take(order, axis=1)
    if any(frame[c].has_nulls() for c in cols):
        has = frame.select(pl.col(cols).is_not_null()).to_numpy().T.take(order, axis=1)
    else:
        has = np.ones(raw.shape, dtype=bool)
    counter = np.array([e.cumulative for e in events], dtype=bool)
    factor = np.array([to_si(e.unit, e.multiplier)[0] for e in events], dtype=np.float64)
    wrap = np.array([2.0 ** counter_width(type_, e.name, e.width) for e in events])
    narrow = np.array([counter_width(type_, e.name, e.width) < 64 for e in events])
    prev_has = np.zeros_like(has)
    prev_has[:, 1:] = has[:, :-1] & same[None, 1:]
    dt = np.empty_like(t)
    dt[1:] = t[1:] - t[:-1]
    dt[:1] = np.nan
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        delta = np.empty_like(raw)  # the difference to the previous row, then the delta
        np.subtract(raw[:, 1:], raw[:, :-1], out=delta[:, 1:])
        delta[:, :1] = 0.0
        rolled = delta < 0
        delta_ok = counter[:, None] & has & prev_has & (~rolled | narrow[:, None])
        np.add(delta, wrap[:, None], out=delta, where=rolled)
        delta *= factor[:, None]
        value = raw  # in place: a gauge's value, a counter's rate
        value *= factor[:, None]
        for i in np.flatnonzero(counter):
            np.divide(delta[i], dt, out=value[i])
    value_ok = np.where(counter[:, None], delta_ok, has)
    in_range = np.ones(len(t), dtype=bool)
    if start is not None:
        in_range &= t >= start
    if end is not None:
        in_range &= t < end
    names = [e.name for e in events]
    units = [(si + "/s" if si else rate_unit("")) if e.cumulative else si
             for e in events for si in [to_si(e.unit, e.multiplier)[1]]]
    meta = frame.select("host", "time", "jobid", "device")
    meta_row = order  # row i of the matrices is row order[i] of meta
    pieces = []
    by_name = sorted(range(len(names)), key=names.__getitem__)  # a sample's rows in event order
    summed = [i for i in by_name if r.aggregate and names[i] not in r.unsummed]
    kept = [i for i in by_name if not r.aggregate or r.per_device or names[i] in r.unsummed]
    if summed:
        rows = np.flatnonzero(in_range)
        # one sum per sample (host, time), its devices in a row; they share the sample's job
        by_sample = rows[np.lexsort((t[rows], host[rows]))]
        h, ts = host[by_sample], t[by_sample]
        starts = np.ones(len(by_sample), dtype=bool)
        starts[1:] = (h[1:] != h[:-1]) | (ts[1:] != ts[:-1])
        bounds = np.flatnonzero(starts)
        s = np.asarray(summed)
        # only the summed events of the rows in range, once, in sample order
        pick = np.ix_(s, by_sample)
        v_ok, d_ok = value_ok[pick], delta_ok[pick]

        def sums(m: np.ndarray, ok: np.ndarray) -> np.ndarray:
            m = m[pick]
            m[~ok] = 0.0
            return (np.add.reduceat(m, bounds, axis=1) if len(bounds)
                    else np.zeros((len(s), 0), dtype=m.dtype))
        total = sums(value, v_ok)
        dtotal = sums(delta, d_ok)
        # a sum with any device missing is left out, never under-counted
        complete = (np.logical_and.reduceat(v_ok, bounds, axis=1) if len(bounds)
                    else np.zeros((len(s), 0), dtype=bool))
        gmeta = meta[meta_row[by_sample[bounds]]].with_columns(pl.lit("").alias("device"))
        pieces.append(_rows_of_matrix(type_, gmeta, s, names, units, counter, total, complete,
                                      dtotal, complete & counter[s, None],
                                      np.ones(len(gmeta), bool)))
    if kept:
        k = np.asarray(kept)
        pieces.append(_rows_of_matrix(type_, meta[meta_row], k, names, units, counter, value[k],
                                      value_ok[k], delta[k], delta_ok[k], in_range))
    return pl.concat(pieces, how="vertical")


def _rows_of_matrix(type_: str, meta: pl.DataFrame, idx: np.ndarray, names: list[str],
                    units: list[str], counter: np.ndarray, value: np.ndarray, value_ok: np.ndarray,
                    delta: np.ndarray, delta_ok: np.ndarray, rows: np.ndarray) -> pl.DataFrame:
    """host_data rows of an (events ``idx`` x rows) matrix, of the ``rows`` wanted:
    a gauge's always (NULL where unread), a counter's only where it has a
    delta (the start of a series reports nothing). Row by row, each row's
    events in the order of ``idx``."""
    keep = rows[None, :] & (delta_ok | ~counter[idx, None])
    row, col = np.nonzero(keep.T)
    flat = col * len(rows) + row  # into the (events x rows) matrices
    event = pl.Series([names[i] for i in idx], dtype=pl.Utf8)
    unit = pl.Series([units[i] for i in idx], dtype=pl.Utf8)
    out = meta[row].with_columns(
        pl.lit(type_).alias("type"),
        event.gather(col).alias("event"),
        unit.gather(col).alias("unit"),
        pl.Series("value", value.ravel()[flat], dtype=pl.Float64),
        pl.Series("_v", value_ok.ravel()[flat]),
        pl.Series("delta", delta.ravel()[flat], dtype=pl.Float64),  # NULL where not _d
        pl.Series("_d", delta_ok.ravel()[flat]),
    )
    return out.select(
        epoch_utc(pl.col("time")).alias("time"), "host", "jobid", "type", "device", "event",
        "unit", pl.when("_v").then(pl.col("value")).alias("value"),
        pl.when("_d").then(pl.col("delta")).alias("delta"))
