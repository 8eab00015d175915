"""Parsed raw samples -> polars frames of raw values, wide and long.

The only Python loop here runs once per data line (to hand polars a row
tuple); everything per value happens in polars. Values come first as
:class:`WidePart` frames (one row per sample and device, one column per
event of a type's schema): the form the rate step works in, because a
sample's devices share their time, host and job. The long frame (one row
per value, event options as columns) is made from them for whoever wants
single values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl
from hpcperf_monitor.rawformat import Event, Sample, Schema, boot_time

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


@dataclass(frozen=True)
class WidePart:
    """Values of one type read with one list of events: ``frame`` has the
    ``META`` columns (and ``chunk``, ``sample`` where the reader keeps copies
    apart) and one Float64 column per event, named ``v0``, ``v1``... in the
    order of ``events`` (control registers left out), so no event name can
    clash with a meta column."""

    type: str
    events: tuple[Event, ...]
    frame: pl.DataFrame

    @property
    def columns(self) -> list[str]:
        return [f"v{i}" for i in range(len(self.events))]


def event_meta(schema: Schema) -> pl.DataFrame:
    """Per-event options of a schema (counter, width, SI factor and unit) as columns."""
    return events_meta(schema.type, schema.events)


def events_meta(type_: str, events: Sequence[Event]) -> pl.DataFrame:
    """Per-event options (counter, width, SI factor and unit) as columns.

    A width the schema leaves out is the kernel's known one (``rates.KERNEL_WIDTHS``).
    """
    rows = []
    for ev in events:
        factor, si = to_si(ev.unit, ev.multiplier)
        width = counter_width(type_, ev.name, ev.width)
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
    return long_of_parts(wide_parts(samples, skip_types))


def wide_parts(samples: Iterable[Sample], skip_types: frozenset[str] = frozenset()
               ) -> list[WidePart]:
    """The samples' values as :class:`WidePart` frames, duplicates dropped as
    :func:`long_frame` says."""
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
    return [_group_part(t, s, f, m, v) for (t, s, f), (m, v) in groups.items()]


def long_of_parts(parts: Sequence[WidePart], extra: Sequence[str] = ()) -> pl.DataFrame:
    """One row per value (LONG_SCHEMA, then the ``extra`` columns of the parts)."""
    frames = []
    for part in parts:
        names = pl.Series([e.name for e in part.events], dtype=pl.Utf8)
        index = [*META, *extra]
        long = part.frame.unpivot(index=index, on=part.columns, variable_name="event",
                                  value_name="raw")
        long = long.with_columns(
            pl.col("event").str.slice(1).cast(pl.Int64).replace_strict(
                list(range(len(names))), names, return_dtype=pl.Utf8),
            pl.lit(part.type).alias("type"))
        long = long.join(events_meta(part.type, part.events), on="event", how="left")
        frames.append(long.select(*LONG_SCHEMA, *extra))
    if not frames:
        return pl.DataFrame(schema={**LONG_SCHEMA, **{c: pl.Int64 for c in extra}})
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


def _group_part(type_: str, schema: Schema, fast: bool, meta: list, values: list
                ) -> WidePart:
    events = schema.fast_events() if fast else schema.events
    cols = list(zip(*values, strict=False)) if values else [[] for _ in events]
    data = dict(zip(META, zip(*meta, strict=False), strict=False))
    keep = [i for i, e in enumerate(events) if not e.control]
    frame = pl.DataFrame(
        {
            **{k: pl.Series(k, v, dtype=LONG_SCHEMA[k]) for k, v in data.items()},
            **{f"v{j}": pl.Series(cols[i], dtype=pl.Float64, strict=False)
               for j, i in enumerate(keep)},
        }
    )
    return WidePart(type_, tuple(events[i] for i in keep), frame)
