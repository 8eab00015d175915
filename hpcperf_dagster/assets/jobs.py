"""``slurm_jobs``: the daily accounting dump parsed into ``job_data``."""

from datetime import date

from dagster import AssetExecutionContext, Failure, MaterializeResult, asset

from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats import quarantine
from hpcperfstats.accounting import parse_accounting
from hpcperfstats.db.load import upsert_job_data
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
