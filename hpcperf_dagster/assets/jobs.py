"""``slurm_jobs`` and ``job_metrics``: accounting in, per-job metrics out."""

import time
from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    TimeWindowPartitionMapping,
    asset,
)

from hpcperf_dagster.assets.host_data import host_data
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats import quarantine
from hpcperfstats.accounting import parse_accounting
from hpcperfstats.db.load import upsert_job_data
from hpcperfstats.job_load import build_job_metrics, metric_bound_violations
from hpcperfstats.pending import Pending


@asset(
    group_name="jobs",
    partitions_def=daily,
    description="Slurm accounting: one row per job in job_data, from "
    "accounting/<YYYY-MM-DD>.txt dumps (newest dump of a job wins).",
)
def slurm_jobs(context: AssetExecutionContext, db: Database, paths: Paths) -> MaterializeResult:
    day = context.partition_key
    path = paths.accounting / f"{day}.txt"
    if not path.exists():
        raise Failure(f"accounting dump {path} does not exist (has the login node run "
                      "hpcperf-sacct-dump for this day?)")
    data = path.read_bytes()
    jobs, issues = parse_accounting(data.decode("utf-8", errors="replace"), source=str(path))
    for issue in issues:
        quarantine.put(paths.quarantine, issue.text.encode(), f"accounting: {issue.reason}",
                       f"{issue.source}:{issue.line}")
    with db.connect() as conn:
        upserted = upsert_job_data(conn, jobs, date.fromisoformat(day))
    ended = jobs.filter(jobs["end_time"].is_not_null())["end_time"].dt.strftime("%Y-%m-%d")
    days = set(ended.to_list())
    Pending(paths.state, "job_metrics").mark(days)
    return MaterializeResult(
        metadata={
            "jobs": jobs.height,
            "upserted": upserted,
            "bad_lines": len(issues),
            "bad_line_examples": "\n".join(str(i) for i in issues[:5]),
            "job_days_marked": sorted(days),
            "file": str(path),
        }
    )


@asset(
    group_name="jobs",
    partitions_def=daily,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[
        AssetDep(slurm_jobs),
        # a job ending today may have started yesterday
        AssetDep(host_data, partition_mapping=TimeWindowPartitionMapping(start_offset=-1)),
    ],
    description="Per-job metrics (CPU cores and efficiency, memory high-water mark, "
    "network bandwidth) for jobs that ended on the day; NULL with a reason when absent.",
    check_specs=[AssetCheckSpec("metrics_within_bounds", asset="job_metrics",
                                description="CPU use <= allocated cores, fractions in [0, 1]")],
)
def job_metrics(context: AssetExecutionContext, db: Database, paths: Paths):
    window = context.partition_time_window
    started_ns = time.time_ns()
    with db.connect() as conn:
        result = build_job_metrics(conn, window.start, window.end)
        violations = metric_bound_violations(conn, window.start, window.end)
    Pending(paths.state, "job_metrics").clear(context.partition_keys, marked_before_ns=started_ns)
    yield MaterializeResult(
        metadata={
            "jobs": result.jobs,
            "jobs_with_data": result.jobs_with_data,
            "metric_rows": result.rows,
            "seconds": round(result.seconds, 3),
        }
    )
    yield AssetCheckResult(
        check_name="metrics_within_bounds", passed=not violations,
        metadata={"violations": len(violations), "examples": str(violations[:5])},
    )
