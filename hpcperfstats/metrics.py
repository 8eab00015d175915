"""Per-job metrics from the derived series of the job's hosts and run time.

Each metric is one row (jobid, metric, value, unit, reason). A metric that
cannot be computed has value NULL and says why (``not started``, ``no data``,
``job too short``), never a zero a researcher would take for a measurement.

Rates are weighted by how much of their interval lies inside the job: a
sample taken a moment after the job began covers five minutes of whatever
ran before, and must not count as the job's. Gauges count at the instants
the job was running (plus a grace for the epilog's end-of-job sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from hpcperfstats.series import SERIES

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

METRIC_COLUMNS = {
    "jobid": pl.Utf8,
    "metric": pl.Utf8,
    "value": pl.Float64,
    "unit": pl.Utf8,
    "reason": pl.Utf8,
}


@dataclass(frozen=True)
class MetricSpec:
    label: str
    unit: str
    series: str
    why: str


METRICS: dict[str, MetricSpec] = {
    "cpu_cores_avg": MetricSpec(
        "CPU cores busy per node", "cores", "cpu_busy",
        "time average of busy cores on each node, averaged over the job's nodes",
    ),
    "cpu_efficiency": MetricSpec(
        "CPU efficiency", "1", "cpu_busy",
        "busy cores summed over nodes divided by the cores Slurm allocated",
    ),
    "mem_hwm_bytes": MetricSpec(
        "Memory high-water mark per node", "B", "mem_used",
        "highest process memory (MemUsed - FilePages - Slab) on any node",
    ),
    "net_bw_avg": MetricSpec(
        "Network bandwidth per node", "B/s", "net_bw",
        "time average of rx+tx bytes/s (loopback excluded), averaged over nodes",
    ),
    "hosts_with_data": MetricSpec(
        "Fraction of nodes with data", "1", "cpu_busy",
        "nodes that reported CPU data during the job, over nodes allocated",
    ),
}


def with_intervals(series: pl.DataFrame) -> pl.DataFrame:
    """Add ``since``: the start of the interval each rate point covers.

    That is the previous point of the same host and series; for a first
    point, the host's typical interval before it.
    """
    key = ["host", "series"]
    frame = series.sort([*key, "time"]).with_columns(
        pl.col("time").shift(1).over(key).alias("since")
    )
    typical = (pl.col("time") - pl.col("since")).median().over(key)
    fallback = pl.col("time") - typical.fill_null(pl.duration(seconds=300))
    return frame.with_columns(pl.coalesce("since", fallback).alias("since"))


def job_points(jobs: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Series points of each job's hosts with their weight inside the job."""
    rates = [n for n, s in SERIES.items() if s.kind == "rate"]
    windows = (
        jobs.select("jobid", "start_time", "end_time", pl.col("hosts").alias("host"))
        .explode("host")
        .drop_nulls(["host", "start_time", "end_time"])
    )
    points = windows.join(with_intervals(series), on="host", how="inner")
    overlap = (
        (pl.min_horizontal("time", "end_time") - pl.max_horizontal("since", "start_time"))
        .dt.total_microseconds() / 1e6
    ).clip(lower_bound=0.0)
    gauge_in = (pl.col("time") >= pl.col("start_time")) & (
        pl.col("time") <= pl.col("end_time") + pl.duration(seconds=END_GRACE_S)
    )
    weight = (
        pl.when(pl.col("series").is_in(rates))
        .then(overlap)
        .otherwise(pl.when(gauge_in).then(1.0).otherwise(0.0))
    )
    span = (pl.col("time") - pl.col("since")).dt.total_microseconds() / 1e6
    return points.with_columns(weight.alias("weight"), span.alias("span")).filter(
        pl.col("weight") > 0
    )


def compute_job_metrics(jobs: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Metrics for ``jobs`` (jobid, start_time, end_time, hosts, ncpus, nnodes).

    ``series`` holds derived series (see ``hpcperfstats.series``) for the
    jobs' hosts from ``LOOKBACK_S`` before their start to after their end.
    """
    points = job_points(jobs, series)
    rates = [n for n, s in SERIES.items() if s.kind == "rate"]
    per_host = points.group_by(["jobid", "host", "series"]).agg(
        ((pl.col("value") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("mean"),
        pl.col("value").max().alias("max"),
        (pl.col("weight").sum() / pl.col("span").sum()).alias("purity"),
    ).filter(~pl.col("series").is_in(rates) | (pl.col("purity") >= MIN_PURITY))
    per_job = per_host.group_by(["jobid", "series"]).agg(
        pl.col("mean").mean().alias("mean_per_host"),
        pl.col("mean").sum().alias("sum_of_means"),
        pl.col("max").max().alias("max"),
        pl.col("host").n_unique().alias("hosts"),
    )

    def pick(series_name: str, expr: pl.Expr, metric: str) -> pl.DataFrame:
        return per_job.filter(pl.col("series") == series_name).select(
            "jobid", pl.lit(metric).alias("metric"), expr.alias("value")
        )

    base = jobs.select("jobid", "ncpus", "nnodes")
    computed = pl.concat(
        [
            pick("cpu_busy", pl.col("mean_per_host"), "cpu_cores_avg"),
            pick("cpu_busy", pl.col("sum_of_means"), "cpu_efficiency"),
            pick("mem_used", pl.col("max"), "mem_hwm_bytes"),
            pick("net_bw", pl.col("mean_per_host"), "net_bw_avg"),
            pick("cpu_busy", pl.col("hosts").cast(pl.Float64), "hosts_with_data"),
        ],
        how="vertical",
    ).join(base, on="jobid", how="left")
    computed = computed.with_columns(
        pl.when(pl.col("metric") == "cpu_efficiency")
        .then(pl.col("value") / pl.col("ncpus").cast(pl.Float64))
        .when(pl.col("metric") == "hosts_with_data")
        .then(pl.col("value") / pl.col("nnodes").cast(pl.Float64))
        .otherwise(pl.col("value"))
        .alias("value")
    ).select("jobid", "metric", "value")

    # every job gets every metric: absent ones carry the reason
    grid = jobs.select("jobid", "start_time", "end_time").join(
        pl.DataFrame({"metric": list(METRICS)}), how="cross"
    )
    run_s = (pl.col("end_time") - pl.col("start_time")).dt.total_seconds()
    out = (
        grid.join(computed, on=["jobid", "metric"], how="left")
        .with_columns(
            pl.when(pl.col("value").is_not_null())
            .then(None)
            .when(pl.col("start_time").is_null())
            .then(pl.lit("not started"))
            .when(pl.col("end_time").is_null())
            .then(pl.lit("still running"))
            .when(run_s < SHORT_JOB_S)
            .then(pl.lit("job too short"))
            .otherwise(pl.lit("no data"))
            .alias("reason"),
            pl.col("metric").replace_strict(
                {k: v.unit for k, v in METRICS.items()}, return_dtype=pl.Utf8
            ).alias("unit"),
        )
    )
    return out.select(list(METRIC_COLUMNS)).sort(["jobid", "metric"])
