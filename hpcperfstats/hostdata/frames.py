"""Parsed raw samples -> one long polars frame of raw values.

The only Python loop here runs once per data line (to hand polars a row
tuple); everything per value happens in polars. Event options from the
schema (counter or gauge, width, unit) travel as columns so the rate step
needs no schema lookups.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from hpcperf_monitor.rawformat import Sample, Schema, boot_time

from hpcperfstats.hostdata.rates import counter_width
from hpcperfstats.hostdata.units import to_si
from hpcperfstats.jobs.accounting import short_host

META = ["time", "host", "jobid", "boot", "device"]

LONG_SCHEMA = {
    "time": pl.Float64,
    "host": pl.Utf8,
    "jobid": pl.Utf8,
    "boot": pl.Float64,
    "type": pl.Utf8,
    "device": pl.Utf8,
    "event": pl.Utf8,
    "raw": pl.Float64,
    "cumulative": pl.Boolean,
    "width": pl.Int32,
    "factor": pl.Float64,
    "si_unit": pl.Utf8,
}


def event_meta(schema: Schema) -> pl.DataFrame:
    """Per-event options of a schema (counter, width, SI factor and unit) as columns.

    A width the schema leaves out is the kernel's known one (``rates.KERNEL_WIDTHS``).
    """
    rows = []
    for ev in schema.events:
        factor, si = to_si(ev.unit, ev.multiplier)
        width = counter_width(schema.type, ev.name, ev.width)
        rows.append((ev.name, ev.cumulative, width, factor, si))
    return pl.DataFrame(
        rows,
        schema={"event": pl.Utf8, "cumulative": pl.Boolean, "width": pl.Int32,
                "factor": pl.Float64, "si_unit": pl.Utf8},
        orient="row",
    )


def long_frame(samples: Iterable[Sample], skip_types: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Every value of every sample as a row; duplicate (host, time) samples dropped.

    A node that replays its spool, or a message delivered twice after a crash
    between archive fsync and broker ack, yields the same sample twice: the
    copy with the most values wins (a torn copy never beats a whole one), of
    equal copies the first read. Control registers (``C``) are not data and
    are left out.
    """
    samples = list(samples)
    best = _best_copies(samples, skip_types)
    groups: dict[tuple[str, Schema, bool], tuple[list, list]] = {}
    for sample in samples:
        host = short_host(sample.host)
        if best[(host, sample.time)] is not sample:
            continue
        boot = boot_time(sample.header)
        jobid = sample.job
        fast = sample.tier == "fast"
        for type_, devices in sample.rows.items():
            if type_ in skip_types:
                continue
            schema = sample.header.schemas[type_]
            meta, values = groups.setdefault((type_, schema, fast), ([], []))
            for device, vals in devices.items():
                meta.append((sample.time, host, jobid, boot, device))
                values.append(vals)
    frames = [_group_frame(t, s, f, m, v) for (t, s, f), (m, v) in groups.items()]
    if not frames:
        return pl.DataFrame(schema=LONG_SCHEMA)
    return pl.concat(frames, how="vertical")


def values_loaded(sample: Sample, skip_types: frozenset[str] = frozenset()) -> int:
    """How many values of a sample become rows (not skipped, not control)."""
    n = 0
    for type_, devices in sample.rows.items():
        if type_ not in skip_types:
            n += len(devices) * sum(not e.control for e in sample.events(type_))
    return n


def _best_copies(samples: list[Sample], skip_types: frozenset[str]
                 ) -> dict[tuple[str, float], Sample]:
    """Per (host, time): the copy with the most values; of equals, the first."""
    best: dict[tuple[str, float], tuple[int, Sample]] = {}
    for sample in samples:
        key = (short_host(sample.host), sample.time)
        n = values_loaded(sample, skip_types)
        if key not in best or n > best[key][0]:
            best[key] = (n, sample)
    return {key: sample for key, (_, sample) in best.items()}


def _group_frame(type_: str, schema: Schema, fast: bool, meta: list, values: list) -> pl.DataFrame:
    events = schema.fast_events() if fast else schema.events
    names = [e.name for e in events]
    cols = list(zip(*values, strict=False)) if values else [[] for _ in names]
    data = dict(zip(META, zip(*meta, strict=False), strict=False))
    frame = pl.DataFrame(
        {
            **{k: pl.Series(k, v, dtype=LONG_SCHEMA[k]) for k, v in data.items()},
            **{n: pl.Series(n, c, dtype=pl.Float64, strict=False)
               for n, c in zip(names, cols, strict=True)},
        }
    )
    keep = [e.name for e in events if not e.control]
    long = frame.unpivot(index=META, on=keep, variable_name="event", value_name="raw")
    long = long.with_columns(pl.lit(type_).alias("type"))
    long = long.join(event_meta(schema), on="event", how="left")
    return long.select(list(LONG_SCHEMA))
