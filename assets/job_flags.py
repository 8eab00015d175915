"""``job_flags``: the staff's rules (a data file) applied to each day's job metrics.

The rules file's hash is the asset's code version: after staff edit a rule,
the Dagster UI marks every materialised day as changed code, and a backfill
over any range recomputes that history. Every row also records the version
of the single rule that produced it.
"""

import hashlib

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from hpcperf_dagster.automation import DAILY_RUNS, RETRIES_FAILED
from hpcperf_dagster.location import asset_key, key_prefix
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Database
from hpcperfstats.config import settings
from hpcperfstats.flags.load import build_job_flags
from hpcperfstats.flags.rules import cluster_rules, load_rules, rules_path, rules_version


def _version() -> str:
    """The rules file's hash, and this cluster's own thresholds where it has any (the
    clusters file): a changed threshold marks that cluster's flag days stale."""
    shared = {r.name: r.version for r in load_rules()}
    mine = {r.name: r.version for r in cluster_rules()}
    if mine == shared:
        return rules_version()
    return rules_version() + "+" + hashlib.sha256(
        ",".join(f"{k}@{v}" for k, v in sorted(mine.items())).encode()).hexdigest()[:8]


@asset(
    key_prefix=key_prefix(),
    group_name="jobs",
    partitions_def=daily,
    backfill_policy=DAILY_RUNS,
    automation_condition=RETRIES_FAILED,
    deps=[asset_key("job_metrics")],
    code_version=_version(),
    description="Flags for the researcher (idle nodes, low CPU efficiency, memory near the "
    "limit or far over-requested, idle GPUs, Lustre metadata storms, imbalance, time "
    "limit far above run time) from the rules in HPCPERF_FLAG_RULES, with the cluster's "
    "own thresholds (HPCPERF_CLUSTERS_FILE).",
)
def job_flags(context: AssetExecutionContext, db: Database) -> MaterializeResult:
    window = context.partition_time_window
    rules = cluster_rules()
    with db.connect() as conn:
        counts = build_job_flags(conn, window.start, window.end, rules, settings().cluster)
    return MaterializeResult(metadata={
        "flags": sum(counts.values()),
        "by_flag": ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none",
        "rules_file": str(rules_path()),
        "rules_version": rules_version(),
        "rule_versions": ", ".join(f"{r.name}@{r.version}" for r in rules),
    })
