"""``host_data``: hourly per-interval rates and gauges from the archive."""

import time

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from hpcperf_dagster.assets.archive import raw_stats_archive
from hpcperf_dagster.partitions import hourly
from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.config import settings
from hpcperfstats.host_load import build_host_data, job_days_touched
from hpcperfstats.pending import Pending


@asset(
    group_name="ingest",
    partitions_def=hourly,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[raw_stats_archive],
    description="Per-interval rates (counters) and gauges per host, one row per "
    "(host, time, type, device, event); rebuilt by hour from the archive.",
    check_specs=[AssetCheckSpec("no_negative_rates", asset="host_data",
                                description="No counter rate in the window is negative")],
)
def host_data(context: AssetExecutionContext, db: Database, paths: Paths):
    window = context.partition_time_window
    started_ns = time.time_ns()
    with db.connect() as conn:
        result = build_host_data(conn, paths.archive, window.start, window.end,
                                 settings().rate_lookback_s)
        negative = conn.execute(
            "SELECT count(*) FROM host_data WHERE time >= %s AND time < %s AND delta < 0",
            (window.start, window.end),
        ).fetchone()[0]
        days = job_days_touched(conn, window.start, window.end)
    Pending(paths.state, "job_metrics").mark(days)
    keys = context.partition_keys
    Pending(paths.state, "host_data").clear(keys, marked_before_ns=started_ns)
    context.log.info(f"{result.rows} rows from {result.samples} samples of {result.hosts} hosts")
    yield MaterializeResult(
        metadata={
            "rows": result.rows,
            "samples": result.samples,
            "hosts": result.hosts,
            "parse_issues": result.issues,
            "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.rows / result.seconds) if result.seconds else 0,
            "job_days_marked": sorted(days),
        }
    )
    yield AssetCheckResult(check_name="no_negative_rates", passed=negative == 0,
                           metadata={"negative_rows": negative})
