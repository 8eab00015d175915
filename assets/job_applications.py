"""``job_applications``: the applications each job ran, from the archive and staff rules.

The rules file's hash is the asset's code version (as for ``job_flags``):
after staff edit a rule, the Dagster UI marks every materialised day as
changed code, and a backfill over any range recomputes that history; each
row records the version it was computed with.
"""

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    asset,
)
from hpcperf_assets.jobs import slurm_jobs

from hpcperf_dagster.automation import DAILY_RUNS, RETRIES_FAILED
from hpcperf_dagster.location import key_prefix
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.apps.load import build_job_applications
from hpcperfstats.apps.rules import app_rules_path, app_rules_version, load_app_rules
from hpcperfstats.config import env


@asset(
    key_prefix=key_prefix(),
    group_name="jobs",
    partitions_def=daily,
    backfill_policy=DAILY_RUNS,  # as the job tables it runs beside (job_tables_job)
    automation_condition=RETRIES_FAILED,
    deps=[slurm_jobs],
    code_version=app_rules_version(),
    description="Applications each job ran (VASP, GROMACS, LAMMPS, Python, ...) with their "
    "share of the job's CPU time (memory where the archive has no CPU time per process), "
    "and the executables no rule names, from the rules in HPCPERF_APP_RULES.",
)
def job_applications(context: AssetExecutionContext, db: Database,
                     paths: Paths) -> MaterializeResult:
    window = context.partition_time_window
    version = app_rules_version()
    with db.connect() as conn:
        result = build_job_applications(conn, paths.archive, window.start, window.end,
                                        load_app_rules(), version, env("CLUSTER"))
    return MaterializeResult(metadata={
        "jobs": result.jobs,
        "rows": result.rows,
        "unknown_executables": result.unknown,
        "jobs_by_basis": ", ".join(f"{k}={v}" for k, v in sorted(result.basis.items()))
        or "none",
        "rules_file": str(app_rules_path()),
        "rules_version": version,
    })
