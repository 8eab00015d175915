"""Named, derived series over ``host_data``: what plots and metrics talk about.

``host_data`` stores what the node reported (per type and event); people ask
for "CPU cores busy" or "memory used by processes". Each derived series is a
signed sum of host-wide events of one type, defined once here and used by the
job metrics, the dashboards and the terminal report alike.
"""

from __future__ import annotations

import io
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
    #: other types with the same events, used where ``type`` is absent
    #: (legacy 32-bit ``ib``, Omni-Path ``opa`` for ``ib_ext``); first wins
    also: tuple[str, ...] = ()

    @property
    def types(self) -> tuple[str, ...]:
        return (self.type, *self.also)

    @property
    def events(self) -> tuple[str, ...]:
        return self.plus + self.minus


LUSTRE_MD_EVENTS = (
    "open", "close", "getattr", "setattr", "statfs", "mkdir", "rmdir", "unlink", "rename",
)

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
    "ib_bw": SeriesSpec("InfiniBand bandwidth", "B/s", "ib_ext",
                        ("port_xmit_data", "port_rcv_data"), also=("opa", "ib")),
    "ib_pkts": SeriesSpec("InfiniBand packets", "1/s", "ib_ext",
                          ("port_xmit_pkts", "port_rcv_pkts"), also=("opa", "ib")),
    "lustre_read_bw": SeriesSpec("Lustre read", "B/s", "llite", ("read_bytes",)),
    "lustre_write_bw": SeriesSpec("Lustre write", "B/s", "llite", ("write_bytes",)),
    "lustre_md_ops": SeriesSpec("Lustre metadata operations", "1/s", "llite", LUSTRE_MD_EVENTS),
    "flops": SeriesSpec("Floating-point operations", "1/s", "pmc", ("flops",)),
    "cycles": SeriesSpec("CPU cycles", "1/s", "pmc", ("cycles",)),
    "mem_bw": SeriesSpec("Memory bandwidth", "B/s", "imc", ("read_bytes", "write_bytes")),
    "cpu_power": SeriesSpec("CPU and DRAM power (RAPL)", "W", "rapl",
                            ("pkg_energy", "dram_energy")),
    # GPU sums over the node's GPUs (host_types sums nvidia_gpu into device '')
    "gpu_util": SeriesSpec("GPU utilisation, summed over GPUs", "%", "nvidia_gpu",
                           ("utilization",), kind="gauge"),
    "gpu_mem": SeriesSpec("GPU memory used", "B", "nvidia_gpu", ("mem_used",), kind="gauge"),
    "gpu_power": SeriesSpec("GPU power", "W", "nvidia_gpu", ("energy",)),
}

#: Per-job series from the monitor's Slurm cgroup rows (device = job id):
#: what this job used on a node it may share with other jobs.
CGROUP_SERIES: dict[str, SeriesSpec] = {
    "cg_cpu": SeriesSpec("CPU cores busy (job cgroup)", "cores", "cgroup", ("cpu_usage",)),
    "cg_mem": SeriesSpec("Memory used (job cgroup)", "B", "cgroup", ("mem_current",),
                         kind="gauge"),
    "cg_mem_peak": SeriesSpec("Memory peak (job cgroup)", "B", "cgroup", ("mem_peak",),
                              kind="gauge"),
    "cg_io_bw": SeriesSpec("I/O (job cgroup)", "B/s", "cgroup",
                           ("io_read_bytes", "io_write_bytes")),
}

#: Every series of either kind, for looking up labels, units and kinds.
ALL_SERIES: dict[str, SeriesSpec] = {**SERIES, **CGROUP_SERIES}

SERIES_SCHEMA = {
    "time": pl.Datetime("us", "UTC"),
    "host": pl.Utf8,
    "series": pl.Utf8,
    "value": pl.Float64,
    "unit": pl.Utf8,
}


CGROUP_SCHEMA = {**SERIES_SCHEMA, "jobid": pl.Utf8}


def _specs(names: Sequence[str] | None) -> dict[str, SeriesSpec]:
    if names is None:
        return SERIES
    unknown = set(names) - set(SERIES)
    if unknown:
        raise KeyError(f"unknown series: {sorted(unknown)}")
    return {n: SERIES[n] for n in names}


def _derive(rows: pl.DataFrame, name: str, spec: SeriesSpec, key: list[str]) -> pl.DataFrame:
    """One series: per ``key`` + type, all events present; first type of
    ``spec.types`` wins where a host reports several."""
    sign = pl.when(pl.col("event").is_in(list(spec.minus))).then(-1.0).otherwise(1.0)
    rank = {t: i for i, t in enumerate(spec.types)}
    part = (
        rows.filter(pl.col("type").is_in(list(spec.types))
                    & pl.col("event").is_in(list(spec.events)))
        .group_by([*key, "type"])
        .agg((pl.col("value") * sign).sum().alias("value"), pl.len().alias("_n"))
        .filter(pl.col("_n") == len(spec.events))
    )
    if len(spec.types) > 1:
        part = (
            part.with_columns(pl.col("type").replace_strict(rank, return_dtype=pl.Int32)
                              .alias("_rank"))
            .sort("_rank").unique(key, keep="first")
        )
    return part.select(*key, pl.lit(name).alias("series"), "value",
                       pl.lit(spec.unit).alias("unit"))


def derive_series(host_data: pl.DataFrame, names: Sequence[str] | None = None) -> pl.DataFrame:
    """Derived series from host-wide ``host_data`` rows (time, host, type, event, value).

    A point exists only where every event of the series was reported, so a
    missing event never reads as zero.
    """
    rows = host_data.filter(pl.col("device") == "") if "device" in host_data.columns else host_data
    parts = [_derive(rows, n, s, ["time", "host"]) for n, s in _specs(names).items()]
    if not parts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    out = pl.concat(parts, how="vertical")
    return out.cast({"time": pl.Datetime("us", "UTC")}).sort(["series", "host", "time"])


def derive_cgroup_series(cgroup_rows: pl.DataFrame) -> pl.DataFrame:
    """Per-job series from ``cgroup`` rows (time, host, device = job id, type, event, value)."""
    rows = cgroup_rows.rename({"device": "jobid"})
    parts = [_derive(rows, n, s, ["time", "host", "jobid"]) for n, s in CGROUP_SERIES.items()]
    out = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=CGROUP_SCHEMA)
    return out.cast(CGROUP_SCHEMA).select(list(CGROUP_SCHEMA))


def read_rows(conn: psycopg.Connection, query: str, params: Sequence, schema: dict
              ) -> pl.DataFrame:
    """Rows of ``query`` (columns: ``{time}``, then ``schema``'s, one being ``host``)
    as a polars frame.

    A day of a large cluster is millions of rows; per-row Python tuples (or
    per-row COPY messages) would cost seconds. The server joins each host's
    rows into one CSV text instead, and polars parses those few large strings.
    Times travel as epoch microseconds.
    """
    full = {"time": pl.Int64, **schema}
    cols = ", ".join(f"coalesce({c}::text, '')" for c in full)
    inner = query.format(time="(extract(epoch FROM time) * 1000000)::bigint AS time")
    cur = conn.execute(
        f"SELECT string_agg(concat_ws(',', {cols}), E'\\n') FROM ({inner}) q GROUP BY host",
        params)
    texts = [r[0] for r in cur.fetchall() if r[0]]
    if not texts:
        return pl.DataFrame(schema={**full, "time": pl.Datetime("us", "UTC")})
    data = "\n".join(texts).encode()
    frame = pl.read_csv(io.BytesIO(data), has_header=False, new_columns=list(full),
                        schema=full)
    return frame.with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))


def host_series(
    conn: psycopg.Connection,
    hosts: Sequence[str],
    start: datetime,
    end: datetime,
    names: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Derived series of ``hosts`` for start <= time <= end, from the database."""
    specs = _specs(names)
    types = sorted({t for s in specs.values() for t in s.types})
    events = sorted({e for s in specs.values() for e in s.events})
    frame = read_rows(
        conn,
        "SELECT {time}, host, type, event, value FROM host_data "
        "WHERE host = ANY(%s) AND time >= %s AND time <= %s AND device = '' "
        "AND type = ANY(%s) AND event = ANY(%s)",
        (list(hosts), start, end, types, events),
        {"host": pl.Utf8, "type": pl.Utf8, "event": pl.Utf8, "value": pl.Float64},
    )
    return derive_series(frame, list(specs))


def cgroup_series(
    conn: psycopg.Connection,
    hosts: Sequence[str],
    jobids: Sequence[str],
    start: datetime,
    end: datetime,
) -> pl.DataFrame:
    """Per-job cgroup series of ``jobids`` on ``hosts`` for start <= time <= end."""
    events = sorted({e for s in CGROUP_SERIES.values() for e in s.events})
    frame = read_rows(
        conn,
        "SELECT {time}, host, type, device, event, value FROM host_data "
        "WHERE host = ANY(%s) AND time >= %s AND time <= %s AND type = 'cgroup' "
        "AND device = ANY(%s) AND event = ANY(%s)",
        (list(hosts), start, end, list(jobids), events),
        {"host": pl.Utf8, "type": pl.Utf8, "device": pl.Utf8, "event": pl.Utf8,
         "value": pl.Float64},
    )
    return derive_cgroup_series(frame)
