"""``host_aggregates``: 5-minute and hourly totals per host and cluster, after host_data.

Follows ``host_data`` by the same automation, requested in the same tick and
so in the same run (and in ``host_data_job``'s backfills): the buckets of an
hour are rebuilt whenever its rows are.
"""

import psycopg
from dagster import (
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    asset,
)
from hpcperf_assets.host_data import host_data

from hpcperf_dagster.automation import FOLLOWS_UPSTREAM, HOURLY_RUNS
from hpcperf_dagster.location import key_prefix
from hpcperf_dagster.partitions import hourly
from hpcperf_dagster.resources import Database
from hpcperfstats.config import settings
from hpcperfstats.hostdata.aggregates import refresh


@asset(
    key_prefix=key_prefix(),
    group_name="ingest",
    partitions_def=hourly,
    backfill_policy=HOURLY_RUNS,
    automation_condition=FOLLOWS_UPSTREAM,
    deps=[host_data],
    description="host_agg and cluster_agg: host_data averaged per 5 min and per hour, "
    "per host and summed over the cluster (portable SQL); the overview reads them for "
    "long ranges.",
)
def host_aggregates(context: AssetExecutionContext, db: Database) -> MaterializeResult:
    window = context.partition_time_window
    try:
        with db.connect() as conn:
            rows = refresh(conn, window.start, window.end, settings().cluster)
    except psycopg.OperationalError as exc:
        raise Failure(description=f"database unavailable while refreshing aggregates "
                      f"{window.start} - {window.end}: {str(exc).strip()}",
                      allow_retries=True) from exc
    return MaterializeResult(metadata=rows)
