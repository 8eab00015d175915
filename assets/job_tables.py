"""``job_series`` (and its rollup), ``job_metrics``, ``job_coverage``: one daily pass
per job end day.

The tables come from the same read of the jobs' host data, so they
are one multi-asset (one read, one transaction per day) with a key per table the
UI shows and the dashboards read. It is subsettable (``can_subset``):
``hpcperf backfill job_metrics 2026-11-28 2026-11-28``
rebuilds that table alone. ``job_days_sensor`` requests the days whose jobs
a new ``host_data`` hour or accounting dump touches (their ``job_days``
metadata, ``host_load.job_days_touched``), which reach further back than the
lineage drawn here; a failed day is retried by the automation.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    TimeWindowPartitionMapping,
    multi_asset,
)
from hpcperf_assets.host_data import host_data
from hpcperf_assets.jobs import slurm_jobs

from hpcperf_dagster.automation import DAILY_RUNS, RETRIES_FAILED
from hpcperf_dagster.location import asset_key
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database
from hpcperfstats.config import settings
from hpcperfstats.jobs.load import (
    JOB_DAY_TABLES,
    build_job_days,
    jobs_missing_metrics,
    metric_bound_violations,
)

# a job ending today may have started yesterday (or earlier: those hours are
# read all the same; the mapping only draws the usual lineage)
_DEPS = [
    AssetDep(slurm_jobs),
    AssetDep(host_data, partition_mapping=TimeWindowPartitionMapping(start_offset=-1)),
]
_RETRY = RETRIES_FAILED


@multi_asset(
    specs=[
        AssetSpec(asset_key("job_series"), deps=_DEPS, group_name="jobs",
                  automation_condition=_RETRY,
                  description="Derived series (CPU, memory, network, I/O, GPU...) of each "
                  "job's hosts over its run, tagged with the job id: (jobid, host, series, "
                  "time, value); partitioned by the day the job ended."),
        AssetSpec(asset_key("job_series_rollup"), deps=[AssetDep(asset_key("job_series"))],
                  group_name="jobs",
                  automation_condition=_RETRY,
                  description="job_series averaged per job, host, series and 10-minute, "
                  "30-minute and 2-hour bucket: what a long job's plots and the data API "
                  "read (built in the same pass as job_series)."),
        AssetSpec(asset_key("job_metrics"), deps=_DEPS, group_name="jobs",
                  automation_condition=_RETRY,
                  description="Per-job metrics with units (CPU efficiency, memory high-water "
                  "mark, bandwidths, GPU, energy, imbalance, idle nodes...); NULL with a reason "
                  "when absent; source 'cgroup' or 'node'."),
        AssetSpec(asset_key("job_coverage"), deps=_DEPS, group_name="jobs",
                  automation_condition=_RETRY,
                  description="Per job and host: samples expected and present, and the gaps."),
    ],
    partitions_def=daily,
    backfill_policy=DAILY_RUNS,
    can_subset=True,
    check_specs=[
        AssetCheckSpec("metrics_within_bounds", asset=asset_key("job_metrics"),
                       description="CPU use <= allocated cores, fractions in [0, 1], "
                       "nothing negative"),
        AssetCheckSpec("jobs_with_data_have_metrics", asset=asset_key("job_metrics"),
                       description="Every finished job with CPU host data has metrics from it"),
    ],
)
def job_tables(context: AssetExecutionContext, db: Database):
    window = context.partition_time_window
    selected = {key.path[-1] for key in context.selected_asset_keys}  # prefix aside
    tables = tuple(t for t in JOB_DAY_TABLES if t in selected)
    with db.connect() as conn:
        cluster = settings().cluster
        result = build_job_days(conn, window.start, window.end, tables, cluster)
        violations = metric_bound_violations(conn, window.start, window.end, cluster)
        missing = jobs_missing_metrics(conn, window.start, window.end, cluster)
    seconds = round(result.seconds, 3)
    rate = round(result.series_rows / result.seconds) if result.seconds else 0
    metadata = {
        "job_series": {"rows": result.series_rows, "jobs": result.jobs, "rows_per_s": rate,
                       "seconds": seconds},
        "job_series_rollup": {"rows": result.rollup_rows, "jobs": result.jobs},
        "job_metrics": {"jobs": result.jobs, "jobs_with_data": result.jobs_with_data,
                        "metric_rows": result.metric_rows, "chunks": result.chunks,
                        "seconds": seconds},
        "job_coverage": {"rows": result.coverage_rows},
    }
    for table in tables:
        yield MaterializeResult(asset_key=asset_key(table), metadata=metadata[table])
    checks = {key.name for key in context.selected_asset_check_keys}
    if "metrics_within_bounds" in checks:
        yield AssetCheckResult(
            asset_key=asset_key("job_metrics"), check_name="metrics_within_bounds",
            passed=not violations,
            metadata={"violations": len(violations), "examples": str(violations[:5])},
        )
    if "jobs_with_data_have_metrics" in checks:
        yield AssetCheckResult(
            asset_key=asset_key("job_metrics"), check_name="jobs_with_data_have_metrics",
            passed=not missing, metadata={"missing": len(missing),
                                          "examples": ", ".join(missing[:10])},
        )
