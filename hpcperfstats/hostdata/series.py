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

from hpcperfstats.config import cluster_name
from hpcperfstats.db.read import query_frame
from hpcperfstats.db.series_sql import series_query


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
#: A job whose cgroup lacked a controller is reported under ``cgroup_mem``
#: (no CPU) or ``cgroup_cpu`` (no memory): what is missing has no point at
#: all, so the metrics fall back to node counters instead of reading 0.
CGROUP_SERIES: dict[str, SeriesSpec] = {
    "cg_cpu": SeriesSpec("CPU cores busy (job cgroup)", "cores", "cgroup", ("cpu_usage",),
                         also=("cgroup_cpu",)),
    "cg_mem": SeriesSpec("Memory used (job cgroup)", "B", "cgroup", ("mem_current",),
                         kind="gauge", also=("cgroup_mem",)),
    "cg_mem_peak": SeriesSpec("Memory peak (job cgroup)", "B", "cgroup", ("mem_peak",),
                              kind="gauge", also=("cgroup_mem",)),
    "cg_io_bw": SeriesSpec("I/O (job cgroup)", "B/s", "cgroup",
                           ("io_read_bytes", "io_write_bytes"), also=("cgroup_mem", "cgroup_cpu")),
}
#: Every type the cgroup series read.
CGROUP_TYPES: tuple[str, ...] = ("cgroup", "cgroup_cpu", "cgroup_mem")

#: Rates over intervals shorter than this are merged into the next point of
#: the same series (DESIGN.md trap: begin/end samples tens of ms apart). CPU
#: time is counted in jiffies (10 ms): over 30 ms one extra jiffy per CPU
#: reads as a third of a core more, so a 2-CPU node "ran" 2.9 cores. Over
#: 2 s the same error is half a percent; the merged point's value is the
#: time-weighted mean of its parts, so no CPU time is lost or added. A short
#: interval with no later point (a job's last cgroup interval) is dropped.
MIN_RATE_INTERVAL_S = 2.0

#: Every series of either kind, for looking up labels, units and kinds.
ALL_SERIES: dict[str, SeriesSpec] = {**SERIES, **CGROUP_SERIES}
#: The rate series (a point covers the interval before it); the rest are gauges.
RATE_SERIES: list[str] = [n for n, s in ALL_SERIES.items() if s.kind == "rate"]

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


def merge_short_intervals(points: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Fold each rate point whose interval (since the previous point of the
    same ``key`` + series) is under :data:`MIN_RATE_INTERVAL_S` into the next
    point: one point per merged run, its value the time-weighted mean.

    Gauges and a series' first point (interval unknown) are kept as they are.
    """
    by = [*key, "series"]
    frame = points.sort([*by, "time"]).with_columns(
        ((pl.col("time") - pl.col("time").shift(1).over(by)).dt.total_microseconds() / 1e6)
        .alias("_d"))
    short = pl.col("series").is_in(RATE_SERIES) & (pl.col("_d") < MIN_RATE_INTERVAL_S)
    short = short.fill_null(False)
    frame = frame.with_columns(short.alias("_short"))
    if not frame["_short"].any():
        return points.select(points.columns)
    # a short point joins the next long one: number runs from the end
    frame = frame.with_columns(
        (~pl.col("_short")).cast(pl.Int64).reverse().cum_sum().reverse().over(by).alias("_g"))
    weight = pl.col("_d").fill_null(0.0)
    merged = frame.group_by([*by, "_g"]).agg(
        pl.col("time").max(),
        pl.when(weight.sum() > 0).then((pl.col("value") * weight).sum() / weight.sum())
        .otherwise(pl.col("value").last()).alias("value"),
        pl.col("_short").all().alias("_all_short"),
        *[pl.col(c).last() for c in points.columns if c not in (*by, "time", "value")],
    )
    # a run of short points with no long point after it measured too little
    return merged.filter(~pl.col("_all_short")).select(points.columns).sort([*by, "time"])


def _clamp_busy(out: pl.DataFrame) -> pl.DataFrame:
    """cpu_busy never above the node's CPU count (cpu_total of the same interval,
    rounded: jiffies over a few seconds read the count to within a few %)."""
    if not {"cpu_busy", "cpu_total"} <= set(out["series"].unique().to_list()):
        return out
    total = (out.filter(pl.col("series") == "cpu_total")
             .select("time", "host", pl.col("value").round().alias("_ncpu")))
    return (out.join(total, on=["time", "host"], how="left")
            .with_columns(pl.when((pl.col("series") == "cpu_busy") & pl.col("_ncpu").is_not_null())
                          .then(pl.min_horizontal("value", "_ncpu")).otherwise(pl.col("value"))
                          .alias("value"))
            .drop("_ncpu"))


def derive_series(host_data: pl.DataFrame, names: Sequence[str] | None = None) -> pl.DataFrame:
    """Derived series from host-wide ``host_data`` rows (time, host, type, event, value).

    A point exists only where every event of the series was reported, so a
    missing event never reads as zero. Rates over very short intervals are
    merged (:func:`merge_short_intervals`) and busy cores never exceed the
    node's CPU count (``cpu_total``): physical bounds hold at every point.
    """
    rows = host_data.filter(pl.col("device") == "") if "device" in host_data.columns else host_data
    parts = [_derive(rows, n, s, ["time", "host"]) for n, s in _specs(names).items()]
    if not parts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    out = pl.concat(parts, how="vertical").cast({"time": pl.Datetime("us", "UTC")})
    out = _clamp_busy(merge_short_intervals(out, ["host"]))
    return out.select(list(SERIES_SCHEMA)).sort(["series", "host", "time"])


def derive_cgroup_series(cgroup_rows: pl.DataFrame) -> pl.DataFrame:
    """Per-job series from cgroup rows (time, host, device = job id, type, event, value)
    of the types :data:`CGROUP_TYPES`."""
    rows = cgroup_rows.rename({"device": "jobid"})
    parts = [_derive(rows, n, s, ["time", "host", "jobid"]) for n, s in CGROUP_SERIES.items()]
    out = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=CGROUP_SCHEMA)
    out = out.cast(CGROUP_SCHEMA).select(list(CGROUP_SCHEMA))
    return merge_short_intervals(out, ["host", "jobid"]) if out.height else out


def read_rows(conn: psycopg.Connection, query: str, params: Sequence | dict, schema: dict
              ) -> pl.DataFrame:
    """Rows of ``query`` (columns: ``{time}``, then ``schema``'s, one being ``host``)
    as a polars frame.

    A day of a large cluster is millions of rows: read as one CSV text per host
    (``query_frame``). Times travel as epoch microseconds.
    """
    inner = query.format(time="(extract(epoch FROM time) * 1000000)::bigint AS time")
    frame = query_frame(conn, inner, params, {"time": pl.Int64, **schema}, split="host")
    return frame.with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))


def host_series(
    conn: psycopg.Connection,
    hosts: Sequence[str],
    start: datetime,
    end: datetime,
    names: Sequence[str] | None = None,
    cluster: str | None = None,
) -> pl.DataFrame:
    """Derived series of ``hosts`` (of ``cluster``, default the configured one) for
    start <= time <= end, from the database."""
    specs = _specs(names)
    types = sorted({t for s in specs.values() for t in s.types})
    events = sorted({e for s in specs.values() for e in s.events})
    frame = read_rows(
        conn,
        series_query(cgroup=False, bucketed=False),
        {"c": cluster_name(cluster), "h": list(hosts), "s": start, "e": end, "types": types,
         "events": events},
        {"host": pl.Utf8, "type": pl.Utf8, "event": pl.Utf8, "value": pl.Float64},
    )
    return derive_series(frame, list(specs))


def cgroup_series(
    conn: psycopg.Connection,
    hosts: Sequence[str],
    jobids: Sequence[str],
    start: datetime,
    end: datetime,
    cluster: str | None = None,
) -> pl.DataFrame:
    """Per-job cgroup series of ``jobids`` on ``hosts`` for start <= time <= end.

    ``jobids`` are the devices to read: pass accounting's raw ids (JobIDRaw,
    what Slurm names the cgroup by) along with the display ids.
    """
    events = sorted({e for s in CGROUP_SERIES.values() for e in s.events})
    frame = read_rows(
        conn,
        series_query(cgroup=True, bucketed=False),
        {"c": cluster_name(cluster), "h": list(hosts), "s": start, "e": end,
         "types": list(CGROUP_TYPES), "devices": list(jobids), "events": events},
        {"host": pl.Utf8, "type": pl.Utf8, "device": pl.Utf8, "event": pl.Utf8,
         "value": pl.Float64},
    )
    return derive_cgroup_series(frame)
