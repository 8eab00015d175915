"""Named, derived series over ``host_data``: what plots and metrics talk about.

``host_data`` stores what the node reported (per type and event); people ask
for "CPU cores busy" or "memory used by processes". Each derived series is a
signed sum of host-wide events of one type, defined once here and used by the
job metrics, the dashboards and the terminal report alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import psycopg


@dataclass(frozen=True)
class SeriesSpec:
    """``plus`` minus ``minus`` events of host-wide ``type`` rows."""

    label: str
    unit: str
    type: str
    plus: tuple[str, ...]
    minus: tuple[str, ...] = ()
    #: "rate": a value stamped t covers the interval since the previous sample;
    #: "gauge": the state at instant t
    kind: str = "rate"

    @property
    def events(self) -> tuple[str, ...]:
        return self.plus + self.minus


SERIES: dict[str, SeriesSpec] = {
    "cpu_busy": SeriesSpec(
        "CPU cores busy", "cores", "cpu", ("user", "nice", "system", "irq", "softirq")
    ),
    "cpu_total": SeriesSpec(
        "CPU cores", "cores", "cpu",
        ("user", "nice", "system", "idle", "iowait", "irq", "softirq"),
    ),
    # page cache and slab are the kernel's, reclaimable: not the job's memory
    "mem_used": SeriesSpec(
        "Memory used by processes", "B", "mem", ("MemUsed",), ("FilePages", "Slab"), "gauge"
    ),
    "mem_total": SeriesSpec("Memory installed", "B", "mem", ("MemTotal",), kind="gauge"),
    "net_bw": SeriesSpec("Network (excluding loopback)", "B/s", "net", ("rx_bytes", "tx_bytes")),
    "block_bw": SeriesSpec("Block I/O", "B/s", "block", ("rd_sectors", "wr_sectors")),
}

SERIES_SCHEMA = {
    "time": pl.Datetime("us", "UTC"),
    "host": pl.Utf8,
    "series": pl.Utf8,
    "value": pl.Float64,
    "unit": pl.Utf8,
}


def _specs(names: Sequence[str] | None) -> dict[str, SeriesSpec]:
    if names is None:
        return SERIES
    unknown = set(names) - set(SERIES)
    if unknown:
        raise KeyError(f"unknown series: {sorted(unknown)}")
    return {n: SERIES[n] for n in names}


def derive_series(host_data: pl.DataFrame, names: Sequence[str] | None = None) -> pl.DataFrame:
    """Derived series from host-wide ``host_data`` rows (time, host, type, event, value).

    A point exists only where every event of the series was reported, so a
    missing event never reads as zero.
    """
    parts = []
    rows = host_data.filter(pl.col("device") == "") if "device" in host_data.columns else host_data
    for name, spec in _specs(names).items():
        sign = pl.when(pl.col("event").is_in(list(spec.minus))).then(-1.0).otherwise(1.0)
        part = (
            rows.filter((pl.col("type") == spec.type) & pl.col("event").is_in(list(spec.events)))
            .group_by(["time", "host"])
            .agg((pl.col("value") * sign).sum().alias("value"), pl.len().alias("_n"))
            .filter(pl.col("_n") == len(spec.events))
            .select(
                "time", "host", pl.lit(name).alias("series"), "value",
                pl.lit(spec.unit).alias("unit"),
            )
        )
        parts.append(part)
    if not parts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    out = pl.concat(parts, how="vertical")
    return out.cast({"time": pl.Datetime("us", "UTC")}).sort(["series", "host", "time"])


def host_series(
    conn: psycopg.Connection,
    hosts: Sequence[str],
    start: datetime,
    end: datetime,
    names: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Derived series of ``hosts`` for start <= time <= end, from the database."""
    specs = _specs(names)
    types = sorted({s.type for s in specs.values()})
    events = sorted({e for s in specs.values() for e in s.events})
    cur = conn.execute(
        "SELECT time, host, type, event, value FROM host_data "
        "WHERE host = ANY(%s) AND time >= %s AND time <= %s AND device = '' "
        "AND type = ANY(%s) AND event = ANY(%s)",
        (list(hosts), start, end, types, events),
    )
    frame = pl.DataFrame(
        cur.fetchall(),
        schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "type": pl.Utf8,
                "event": pl.Utf8, "value": pl.Float64},
        orient="row",
    )
    return derive_series(frame, list(specs))
