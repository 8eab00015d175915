"""``host_data``: hourly per-interval rates and gauges from the archive.

Follows ``raw_stats_archive`` by declarative automation: any hour whose
archive partition was materialised since its last build is rebuilt, late
hours included. Each materialisation names the job days its rows touch
(``job_days`` metadata), which ``job_days_sensor`` turns into job-table runs.
"""

import psycopg
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    asset,
)
from hpcperf_assets.archive import raw_stats_archive

from hpcperf_dagster.automation import FOLLOWS_UPSTREAM, HOURLY_RUNS
from hpcperf_dagster.location import asset_key, key_prefix
from hpcperf_dagster.partitions import hourly
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.config import settings
from hpcperfstats.hostdata.load import build_host_data, job_days_touched, window_checks

#: run tag asking for a full rebuild of the run's hours (every row replaced,
#: e.g. a backfill after a rate rule changed); without it only what changed
#: in the archive is written. In the UI: "Materialize" with the tag
#: ``hpcperf/rebuild=full``, or a backfill launched with it.
REBUILD_TAG = "hpcperf/rebuild"


@asset(
    key_prefix=key_prefix(),
    group_name="ingest",
    partitions_def=hourly,
    backfill_policy=HOURLY_RUNS,
    automation_condition=FOLLOWS_UPSTREAM,
    deps=[raw_stats_archive],
    description="Per-interval rates (counters) and gauges per host, one row per "
    "(host, time, type, device, event); loaded by hour from the archive, only what "
    f"changed unless the run has the tag {REBUILD_TAG}=full.",
    check_specs=[
        AssetCheckSpec("no_negative_rates", asset=asset_key("host_data"),
                       description="No counter rate in the window is negative"),
        AssetCheckSpec("no_duplicate_rows", asset=asset_key("host_data"),
                       description="One row per (host, time, type, device, event)"),
        AssetCheckSpec("every_sample_loaded", asset=asset_key("host_data"),
                       description="Every archived (host, time) sample of the window has rows, "
                       "except the first sample of a series (nothing to difference against)"),
    ],
)
def host_data(context: AssetExecutionContext, db: Database, paths: Paths):
    window = context.partition_time_window
    try:
        with db.connect() as conn:
            cluster = settings().cluster
            result = build_host_data(conn, paths.archive, window.start, window.end,
                                     settings().rate_lookback_s,
                                     full=context.run.tags.get(REBUILD_TAG) == "full",
                                     cluster=cluster)
            negative, duplicates = window_checks(conn, window.start, window.end, cluster)
            days = job_days_touched(conn, window.start, window.end, cluster)
    except psycopg.OperationalError as exc:
        # nothing was committed; the failed partitions are retried by the automation
        raise Failure(
            description=f"database unavailable while loading host_data {window.start} - "
            f"{window.end}: {str(exc).strip()}. Nothing was written; the hours show as "
            "failed and are retried after HPCPERF_RETRY_AFTER_S.",
            allow_retries=True,
        ) from exc
    context.log.info(f"{result.rows} rows written, {result.rows_deleted} deleted, from "
                     f"{result.samples} samples of {result.hosts} hosts in {result.pieces} pieces")
    yield MaterializeResult(
        metadata={
            "rows": result.rows,
            "rows_deleted": result.rows_deleted,
            "full_rebuild": context.run.tags.get(REBUILD_TAG) == "full",
            "pieces": result.pieces,
            "hosts_appended": result.hosts_appended,
            "hosts_replaced": result.hosts_replaced,
            "hosts_unchanged": result.hosts_unchanged,
            "samples": result.samples,
            "hosts": result.hosts,
            "parse_issues": result.issues,
            "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.rows / result.seconds) if result.seconds else 0,
            "job_days": sorted(days),
        }
    )
    yield AssetCheckResult(check_name="no_negative_rates", passed=negative == 0,
                           metadata={"negative_rows": negative})
    yield AssetCheckResult(check_name="no_duplicate_rows", passed=duplicates == 0,
                           metadata={"duplicate_rows": duplicates})
    yield AssetCheckResult(check_name="every_sample_loaded", passed=result.samples_unloaded == 0,
                           metadata={"archived_samples": result.samples,
                                     "unloaded_samples": result.samples_unloaded})
