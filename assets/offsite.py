"""``archive_day``: close a UTC day of the raw archive, compress it, send it off site.

Export state is this asset's daily partitions: a failed export shows as a
failed partition and is retried by the nightly ``archive_day_schedule``
(``hpcperf_dagster/jobs.py``), which requests
every recent day not yet materialised (or by a backfill); a re-run of an
exported day finds the day's manifest at the target and sends nothing.
"""

from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from hpcperf_dagster.location import key_prefix
from hpcperf_dagster.partitions import daily
from hpcperf_dagster.resources import Paths
from hpcperfstats.archive.days import compress_day
from hpcperfstats.archive.offsite import Target, export_day
from hpcperfstats.config import settings

#: days back the nightly schedule looks for days not yet exported
CATCH_UP_DAYS = 14


def _day(partition_key: str) -> int:
    return int(datetime.strptime(partition_key, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())


@asset(
    key_prefix=key_prefix(),
    group_name="ingest",
    partitions_def=daily,
    description="Closed day of the raw archive: files gzip-compressed, copied with a "
    "sha256 manifest to HPCPERF_EXPORT_TARGET (mounted path or [user@]host:/path over "
    "rsync+SSH), read back and verified; the local copy goes after "
    "HPCPERF_EXPORT_REMOVE_AFTER_DAYS (unset: kept).",
)
def archive_day(context: AssetExecutionContext, paths: Paths) -> MaterializeResult:
    cfg = settings()
    day = _day(context.partition_key)
    if cfg.export_target is None:
        files, still_open = compress_day(paths.archive, day)
        return MaterializeResult(metadata={"target": "(none: compressed only)",
                                           "files": len(files), "still_open": len(still_open)})
    res = export_day(paths.archive, day, Target(cfg.export_target, cfg.export_ssh),
                     cfg.export_remove_after_days)
    return MaterializeResult(metadata={
        "target": cfg.export_target, "files": res.files, "bytes": res.bytes,
        "files_sent": res.sent, "verified": res.verified, "removed_locally": res.removed,
        "hosts": len(res.hosts),
    })
