"""Per-job metrics from the derived series of the job's hosts and run time.

Each metric is one row (jobid, metric, value, unit, reason, source). A metric
that cannot be computed has value NULL and says why (``not started``, ``no
data``, ``job too short``, ``no GPUs allocated``), never a zero a researcher
would take for a measurement.

Rates are weighted by how much of their interval lies inside the job: a
sample taken a moment after the job began covers five minutes of whatever
ran before, and must not count as the job's. Gauges count at the instants
the job was running (plus a grace for the epilog's end-of-job sample).

Where the monitor reported the job's own Slurm cgroup (nodes shared by
several jobs), CPU and memory come from it instead of node totals, and the
``source`` column says ``cgroup`` rather than ``node`` so the job page can
tell the researcher which one they are reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from hpcperfstats.db.tables import JOB_METRICS
from hpcperfstats.hostdata.series import ALL_SERIES, CGROUP_SCHEMA, RATE_SERIES

#: A sample taken by the epilog lands seconds after Slurm's end time.
END_GRACE_S = 60
#: A job without a single point in its window that ran less than this is
#: "too short" (a rate needs two samples) rather than missing its data.
SHORT_JOB_S = 600
#: A rate average needs at least this share of its intervals' time inside the
#: job; below it the intervals mostly measured something else (a job shorter
#: than the sampling interval without begin/end samples).
MIN_PURITY = 0.5
#: How far before a job's start the series are read, to know the interval
#: of the first rate inside the job.
LOOKBACK_S = 3600
#: A node of a job is idle when its busy cores stay under this share of the
#: cores the job holds on it (OS noise reads as a few hundredths of a core).
IDLE_SHARE = 0.05

METRIC_COLUMNS = JOB_METRICS.schema


def _sum(col: pl.Expr) -> pl.Expr:
    """A sum that is NULL over no values (polars sums nothing to 0, a false zero)."""
    return pl.when(col.count() > 0).then(col.sum())


@dataclass(frozen=True)
class MetricSpec:
    """A job metric: everything about it in one place.

    ``formula`` is evaluated per job: for a ``source`` other than
    ``accounting`` over the job's per-host frame (``<series>_mean``/``_max``
    columns, plus ``cpu``/``mem`` (the job's cgroup where it reported, else
    node totals), ``power``, ``cpn`` (cores per node) and the job's
    accounting facts); for ``accounting`` over the jobs frame alone.
    ``source``: ``cpu``/``memory`` (cgroup or node), ``gpu``, ``node`` or
    ``accounting``; ``better``: ``higher``, ``lower`` or ``""`` (neither:
    it depends on the code).
    """

    label: str
    unit: str
    series: str
    why: str
    formula: pl.Expr
    source: str = "node"
    better: str = ""


_M = MetricSpec
#: per-job expressions over the per-host frame (one group per job)
_FIRST = {c: pl.col(c).first() for c in ("ncpus", "nnodes", "ngpus", "req_mem_bytes")}
_RUN_S = (pl.col("end_time") - pl.col("start_time")).dt.total_seconds()
_N_CPU = pl.col("cpu").count()
_CPU, _MEM = pl.col("cpu"), pl.col("mem")

METRICS: dict[str, MetricSpec] = {
    "cpu_cores_avg": _M("CPU cores busy per node", "cores", "cpu_busy",
                        "time average of busy cores on each node, averaged over the job's nodes",
                        _CPU.mean(), "cpu", "higher"),
    "cpu_efficiency": _M("CPU efficiency", "1", "cpu_busy",
                         "busy cores summed over nodes divided by the cores Slurm allocated",
                         _sum(_CPU) / _FIRST["ncpus"], "cpu", "higher"),
    "cpu_imbalance": _M("Load imbalance across nodes", "1", "cpu_busy",
                        "1 - mean/max of the nodes' busy cores: 0 even, near 1 one node works",
                        pl.when((_FIRST["nnodes"] > 1) & (_N_CPU > 1) & (_CPU.max() > 0))
                        .then(1 - _CPU.mean() / _CPU.max()), "cpu", "lower"),
    "idle_nodes": _M("Idle nodes", "nodes", "cpu_busy",
                     f"nodes whose busy cores stayed under {IDLE_SHARE:.0%} of the job's cores",
                     pl.when(_N_CPU > 0).then((_CPU < IDLE_SHARE * pl.col("cpn")).sum()
                                              .cast(pl.Float64)), "cpu", "lower"),
    "cpu_freq_hz": _M("CPU frequency while busy", "Hz", "cycles",
                      "core cycles per second divided by busy cores (needs PMC counters)",
                      _sum(pl.col("cycles_mean")) / pl.col("cpu_busy_mean").filter(
                          pl.col("cycles_mean").is_not_null()).sum(), better="higher"),
    "mem_hwm_bytes": _M("Memory high-water mark per node", "B", "mem_used",
                        "highest process memory (MemUsed - FilePages - Slab, or the job's "
                        "cgroup) on any node", _MEM.max(), "memory"),
    "mem_hwm_fraction": _M("Memory high-water mark, share of the node", "1", "mem_used",
                           "highest memory on any node over that node's installed memory",
                           (_MEM / pl.col("mem_total_max")).max(), "memory"),
    "mem_requested_ratio": _M("Memory requested over used", "1", "mem_used",
                              "memory Slurm reserved divided by the high-water mark x nodes",
                              _FIRST["req_mem_bytes"] / (_MEM.max() * _FIRST["nnodes"]),
                              "memory", "lower"),
    "flops_avg": _M("FLOPS per node", "1/s", "flops", "floating-point operations per second",
                    pl.col("flops_mean").mean(), better="higher"),
    "mem_bw_avg": _M("Memory bandwidth per node", "B/s", "mem_bw",
                     "memory controller read+write bytes/s, averaged over nodes",
                     pl.col("mem_bw_mean").mean()),
    "net_bw_avg": _M("Network bandwidth per node", "B/s", "net_bw",
                     "time average of rx+tx bytes/s (loopback excluded), averaged over nodes",
                     pl.col("net_bw_mean").mean()),
    "ib_bw_avg": _M("InfiniBand bandwidth per node", "B/s", "ib_bw",
                    "port xmit+rcv data bytes/s, averaged over nodes", pl.col("ib_bw_mean").mean()),
    "ib_packet_bytes": _M("InfiniBand packet size", "B", "ib_pkts",
                          "InfiniBand bytes over packets: small packets mean latency-bound",
                          _sum(pl.col("ib_bw_mean")) / _sum(pl.col("ib_pkts_mean")),
                          better="higher"),
    "block_bw_avg": _M("Block I/O per node", "B/s", "block_bw", "local disk read+write bytes/s",
                       pl.col("block_bw_mean").mean()),
    "lustre_read_bw_avg": _M("Lustre read per node", "B/s", "lustre_read_bw",
                             "Lustre client read bytes/s, averaged over nodes",
                             pl.col("lustre_read_bw_mean").mean()),
    "lustre_write_bw_avg": _M("Lustre write per node", "B/s", "lustre_write_bw",
                              "Lustre client write bytes/s, averaged over nodes",
                              pl.col("lustre_write_bw_mean").mean()),
    "lustre_md_ops_avg": _M("Lustre metadata ops per node", "1/s", "lustre_md_ops",
                            "open, close, stat, mkdir, unlink... per second, averaged over nodes",
                            pl.col("lustre_md_ops_mean").mean(), better="lower"),
    "gpu_util": _M("GPU utilisation", "1", "gpu_util",
                   "GPU busy share summed over the nodes' GPUs divided by GPUs allocated",
                   _sum(pl.col("gpu_util_mean")) / 100.0 / _FIRST["ngpus"], "gpu", "higher"),
    "gpu_mem_hwm_bytes": _M("GPU memory high-water mark per node", "B", "gpu_mem",
                            "highest GPU memory in use on any node", pl.col("gpu_mem_max").max(),
                            "gpu"),
    "power_avg_w": _M("Power per node", "W", "cpu_power",
                      "RAPL package+DRAM plus GPU power, averaged over nodes",
                      pl.col("power").mean()),
    "energy_j": _M("Energy", "J", "cpu_power", "average power x nodes x run time",
                   pl.col("power").mean() * _FIRST["nnodes"] * _RUN_S.first(), better="lower"),
    "hosts_with_data": _M("Fraction of nodes with data", "1", "cpu_busy",
                          "nodes that reported CPU data during the job, over nodes allocated",
                          _N_CPU / _FIRST["nnodes"], "cpu", "higher"),
    "time_limit_ratio": _M("Time limit over run time", "1", "",
                           "the time limit asked for divided by the time the job ran",
                           pl.when(_RUN_S > 0).then(pl.col("timelimit_s").cast(pl.Float64)
                                                    / _RUN_S), "accounting", "lower"),
}
_FROM_HOSTS = [m for m, spec in METRICS.items() if spec.source != "accounting"]


def _of_source(source: str) -> list[str]:
    """The metrics read from ``source`` (cpu, memory, gpu, node, accounting)."""
    return [m for m, spec in METRICS.items() if spec.source == source]

_JOB_DEFAULTS = {"ngpus": pl.Int32, "req_mem_bytes": pl.Int64, "timelimit_s": pl.Int64,
                 "jobid_raw": pl.Utf8, "shared": pl.Boolean}

#: ``source`` of a CPU or memory metric read from node totals on a node that
#: other jobs used at the same time (``shared`` in the jobs frame), or of
#: which the job held fewer cores than the node has: the totals count work
#: that is not the job's, so they are shown as such and never flagged or
#: advised on (``flags.evaluate_flags``).
SHARED_NODE = "node (shared)"

#: The optional sources (hardware a node may not have), for "not measured"
#: reasons: a node without the source is not a job too short to measure.
SOURCE_NAMES = {
    "ib_ext": "InfiniBand counters",
    "llite": "Lustre client", "pmc": "hardware performance counters (PMU)",
    "imc": "memory-controller counters", "rapl": "RAPL energy counters",
    "nvidia_gpu": "GPU monitoring (NVML)",
}


def with_intervals(series: pl.DataFrame, key: tuple[str, ...] = ("host", "series"),
                   times: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add ``since``: the start of the interval each rate point covers.

    That is the previous point of the same key; for a first point, the
    host's previous sample (``times``: distinct (host, time) of every sample)
    before it, its real interval. Without one the interval is unknown and
    ``since`` stays null: the point gets no weight rather than a guessed one
    (a median gap weighted a 30 ms begin interval as ten seconds).
    """
    key_ = list(key)
    frame = series.sort([*key_, "time"]).with_columns(
        pl.col("time").shift(1).over(key_).alias("since")
    )
    if times is None or not times.height or not frame.height:
        return frame
    before = frame.select("host", "time").unique().sort("time").join_asof(
        times.select("host", pl.col("time").alias("_prev")).sort("_prev"),
        left_on="time", right_on="_prev", by="host", strategy="backward",
        allow_exact_matches=False, check_sortedness=False,  # sorted by time above
    )
    return (frame.join(before, on=["host", "time"], how="left")
            .with_columns(pl.coalesce("since", "_prev").alias("since")).drop("_prev"))


def own_cgroup(jobs: pl.DataFrame, cgroup: pl.DataFrame) -> pl.DataFrame:
    """The jobs' own cgroup series, ``jobid`` set to the job's accounting id.

    Slurm names a job's cgroup by its raw id (``JobIDRaw``: an array task
    ``1234_7`` is ``1240``; slurmd's prolog on 22.05 knows no other), so the
    cgroup device joins on ``jobid_raw``; archives whose prolog sent the
    array name join on ``jobid`` as before.
    """
    raw = (pl.col("jobid_raw") if "jobid_raw" in jobs.columns
           else pl.col("jobid")).fill_null(pl.col("jobid"))
    keys = pl.concat([jobs.select("jobid", raw.alias("_dev")),
                      jobs.select("jobid", pl.col("jobid").alias("_dev"))]).unique()
    return (cgroup.rename({"jobid": "_dev"}).join(keys, on="_dev", how="inner")
            .drop("_dev").select(cgroup.columns))


def _weighted(points: pl.DataFrame) -> pl.DataFrame:
    """Weight of each point inside its job: overlap seconds for rates, 1/0 for gauges."""
    overlap = (
        (pl.min_horizontal("time", "end_time") - pl.max_horizontal("since", "start_time"))
        .dt.total_microseconds() / 1e6
    ).clip(lower_bound=0.0)
    weight = (
        pl.when(pl.col("series").is_in(RATE_SERIES))
        .then(pl.when(pl.col("since").is_not_null()).then(overlap))  # unknown interval: none
        .otherwise(pl.when(inside_job()).then(1.0).otherwise(0.0))
    )
    span = (pl.col("time") - pl.col("since")).dt.total_microseconds() / 1e6
    return points.with_columns(weight.alias("weight"), span.alias("span")).filter(
        pl.col("weight") > 0
    )


def inside_job(is_rate: pl.Expr | bool = False) -> pl.Expr:
    """The one definition of a point "inside the job" (columns time, start_time, end_time).

    A reading stamped at the start instant (a gauge; a sample's presence, the
    prolog's begin sample) is the job's state at its start: [start, end + grace].
    A rate stamped t covers the interval before t, so one stamped at the start
    measured only what ran before the job: (start, end + grace]. The grace
    takes in the epilog's end sample, stamped seconds after Slurm's end time.
    """
    until_end = pl.col("time") <= pl.col("end_time") + pl.duration(seconds=END_GRACE_S)
    from_start = (pl.when(is_rate).then(pl.col("time") > pl.col("start_time"))
                  .otherwise(pl.col("time") >= pl.col("start_time")))
    return from_start & until_end


def job_windows(jobs: pl.DataFrame) -> pl.DataFrame:
    """One row per (job, host) with the job's start and end."""
    return (
        jobs.select("jobid", "start_time", "end_time", pl.col("hosts").alias("host"))
        .explode("host")
        .drop_nulls(["host", "start_time", "end_time"])
    )


def job_points(jobs: pl.DataFrame, series: pl.DataFrame,
               cgroup: pl.DataFrame | None = None) -> pl.DataFrame:
    """Series points of each job's hosts (and its own cgroup) with their weight."""
    windows = job_windows(jobs)
    times = series.select("host", "time").unique()
    node = windows.join(with_intervals(series, times=times), on="host", how="inner")
    parts = [node.select("jobid", "host", "series", "time", "since", "value",
                         "start_time", "end_time")]
    if cgroup is not None and cgroup.height:
        cg = own_cgroup(jobs, cgroup)
        own = windows.join(with_intervals(cg, ("jobid", "host", "series"), times),
                           on=["jobid", "host"], how="inner")
        parts.append(own.select(parts[0].columns))
    return _weighted(pl.concat(parts, how="vertical"))


def _per_host(points: pl.DataFrame) -> pl.DataFrame:
    """(jobid, host) -> ``<series>_mean`` and ``<series>_max`` columns."""
    long = points.group_by(["jobid", "host", "series"]).agg(
        ((pl.col("value") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("mean"),
        pl.col("value").max().alias("max"),
        (pl.col("weight").sum() / pl.col("span").sum()).alias("purity"),
    ).filter(~pl.col("series").is_in(RATE_SERIES) | (pl.col("purity") >= MIN_PURITY))
    stats = long.unpivot(index=["jobid", "host", "series"], on=["mean", "max"],
                         variable_name="stat")
    wide = (
        stats.with_columns((pl.col("series") + "_" + pl.col("stat")).alias("col"))
        .pivot(on="col", index=["jobid", "host"], values="value")
    )
    missing = [f"{s}_{k}" for s in ALL_SERIES for k in ("mean", "max")
               if f"{s}_{k}" not in wide.columns]
    return wide.with_columns([pl.lit(None, pl.Float64).alias(c) for c in missing])


def _job_level(per_host: pl.DataFrame, jobs: pl.DataFrame) -> pl.DataFrame:
    """Aggregate the per-host frame into one wide row per job."""
    has_cg_cpu = pl.col("cg_cpu_mean").is_not_null().any().over("jobid")
    has_cg_mem = (pl.col("cg_mem_max").is_not_null()
                  | pl.col("cg_mem_peak_max").is_not_null()).any().over("jobid")
    frame = per_host.join(jobs, on="jobid", how="inner").with_columns(
        pl.when(has_cg_cpu).then(pl.col("cg_cpu_mean")).otherwise(pl.col("cpu_busy_mean"))
        .alias("cpu"),
        pl.when(has_cg_mem).then(pl.max_horizontal("cg_mem_max", "cg_mem_peak_max"))
        .otherwise(pl.col("mem_used_max")).alias("mem"),
        has_cg_cpu.alias("cpu_cg"), has_cg_mem.alias("mem_cg"),
        (pl.col("ncpus").cast(pl.Float64) / pl.col("nnodes").cast(pl.Float64)).alias("cpn"),
        pl.when(pl.col("cpu_power_mean").is_null() & pl.col("gpu_power_mean").is_null())
        .then(None).otherwise(pl.sum_horizontal("cpu_power_mean", "gpu_power_mean"))
        .alias("power"),
    )
    return frame.group_by("jobid").agg(
        *(METRICS[m].formula.alias(m) for m in _FROM_HOSTS),
        pl.col("cpu_cg").first(), pl.col("mem_cg").first(),
        # the job held fewer cores than a node has: node totals include others' work
        (pl.col("cpn") < pl.col("cpu_total_mean").round() - 0.5).fill_null(False).any()
        .alias("partial"),
    )


def _sources(jobs: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """(jobid, metric, absent): "not measured: the node has no <source>" where
    the job's hosts reported data but never the metric's optional source (PMU,
    InfiniBand, Lustre, RAPL, GPU) in the window read; else null (a host that
    sent nothing at all is "no data")."""
    wanted = pl.DataFrame(
        [(m, spec.series, SOURCE_NAMES[ALL_SERIES[spec.series].type])
         for m, spec in METRICS.items()
         if spec.series in ALL_SERIES and ALL_SERIES[spec.series].type in SOURCE_NAMES],
        schema={"metric": pl.Utf8, "series": pl.Utf8, "what": pl.Utf8}, orient="row")
    seen = series.select("host", "series").unique()
    have = (job_windows(jobs).select("jobid", "host").join(seen, on="host", how="inner")
            .select("jobid", "series").unique())
    reporting = have.select("jobid").unique()
    have = have.with_columns(pl.lit(True).alias("_has"))
    return (reporting.join(wanted, how="cross")
            .join(have, on=["jobid", "series"], how="left")
            .with_columns(pl.when(pl.col("_has").is_null())
                          .then(pl.lit("not measured: the node has no ") + pl.col("what"))
                          .alias("absent"))
            .select("jobid", "metric", "absent"))


def compute_job_metrics(jobs: pl.DataFrame, series: pl.DataFrame,
                        cgroup: pl.DataFrame | None = None) -> pl.DataFrame:
    """Metrics for ``jobs`` (jobid, start_time, end_time, hosts, ncpus, nnodes and,
    when known, ngpus, req_mem_bytes, timelimit_s).

    ``series`` holds derived series (see ``hpcperfstats.hostdata.series``) for the
    jobs' hosts from ``LOOKBACK_S`` before their start to after their end;
    ``cgroup`` the jobs' own cgroup series, where the monitor reported them.
    """
    jobs = jobs.with_columns([pl.lit(None, t).alias(c) for c, t in _JOB_DEFAULTS.items()
                              if c not in jobs.columns])
    cgroup = cgroup if cgroup is not None else pl.DataFrame(schema=CGROUP_SCHEMA)
    points = job_points(jobs, series, cgroup)
    facts = jobs.select("jobid", "start_time", "end_time", "ncpus", "nnodes", "ngpus",
                        "req_mem_bytes")
    wide = _job_level(_per_host(points), facts) if points.height else None
    if wide is None:
        computed = pl.DataFrame(schema={"jobid": pl.Utf8, "metric": pl.Utf8,
                                        "value": pl.Float64, "source": pl.Utf8})
    else:
        wide = wide.join(jobs.select("jobid", pl.col("shared").fill_null(False)), on="jobid"
                         ).with_columns((pl.col("shared") | pl.col("partial")).alias("shared"))
        node = pl.when(pl.col("shared")).then(pl.lit(SHARED_NODE)).otherwise(pl.lit("node"))
        computed = (
            wide.unpivot(index=["jobid", "cpu_cg", "mem_cg", "shared"], on=_FROM_HOSTS,
                         variable_name="metric", value_name="value")
            .with_columns(
                # 0/0 or x/0 (no cores, no memory recorded) is no measurement
                pl.when(pl.col("value").cast(pl.Float64).is_finite())
                .then(pl.col("value").cast(pl.Float64)).alias("value"),
                pl.when(pl.col("metric").is_in(_of_source("cpu")))
                .then(pl.when(pl.col("cpu_cg")).then(pl.lit("cgroup")).otherwise(node))
                .when(pl.col("metric").is_in(_of_source("memory")))
                .then(pl.when(pl.col("mem_cg")).then(pl.lit("cgroup")).otherwise(node))
                .otherwise(pl.lit("node")).alias("source"),
            )
            .select("jobid", "metric", "value", "source")
        )
    accounting = [jobs.select("jobid", pl.lit(m).alias("metric"), METRICS[m].formula
                              .alias("value"), pl.lit("accounting").alias("source"))
                  for m in _of_source("accounting")]
    computed = pl.concat([computed, *(a.cast(computed.schema) for a in accounting)],
                         how="vertical")
    run_s = _RUN_S

    # every job gets every metric: absent ones carry the reason
    grid = jobs.select("jobid", "start_time", "end_time", "ngpus", "nnodes").join(
        pl.DataFrame({"metric": list(METRICS)}), how="cross"
    ).join(_sources(jobs, series), on=["jobid", "metric"], how="left")
    no_gpu = pl.col("metric").is_in(_of_source("gpu")) & (pl.col("ngpus").fill_null(0) == 0)
    out = (
        grid.join(computed, on=["jobid", "metric"], how="left")
        .with_columns(pl.when(no_gpu).then(None).otherwise(pl.col("value")).alias("value"))
        .with_columns(
            pl.when(pl.col("value").is_not_null())
            .then(None)
            .when(pl.col("start_time").is_null())
            .then(pl.lit("not started"))
            .when(pl.col("end_time").is_null())
            .then(pl.lit("still running"))
            .when(no_gpu)
            .then(pl.lit("no GPUs allocated"))
            .when((pl.col("metric") == "cpu_imbalance") & (pl.col("nnodes") == 1))
            .then(pl.lit("single node"))
            .when(pl.col("absent").is_not_null())
            .then(pl.col("absent"))
            .when(run_s < SHORT_JOB_S)
            .then(pl.lit("job too short"))
            .otherwise(pl.lit("no data"))
            .alias("reason"),
            pl.col("metric").replace_strict(
                {k: v.unit for k, v in METRICS.items()}, return_dtype=pl.Utf8
            ).alias("unit"),
        )
        .with_columns(pl.when(pl.col("value").is_null()).then(None)
                      .otherwise(pl.col("source")).alias("source"))
    )
    return out.select(list(METRIC_COLUMNS)).cast(METRIC_COLUMNS).sort(["jobid", "metric"])
