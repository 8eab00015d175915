"""``raw_stats_archive``: drain the cluster's queue into the raw archive."""

from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    OpExecutionContext,
    asset,
    job,
    op,
)

from hpcperf_dagster.resources import Broker, Paths
from hpcperfstats.archive import quarantine
from hpcperfstats.config import settings
from hpcperfstats.ingest.drain import drain_queue
from hpcperfstats.ingest.importer import import_archive


@asset(
    group_name="ingest",
    description="Raw stats messages from RabbitMQ, appended to archive/<host>/<epoch> files "
    "(fsync before ack); unusable messages go to quarantine with the reason.",
    check_specs=[AssetCheckSpec("nothing_quarantined", asset="raw_stats_archive",
                                description="No message of this drain was quarantined")],
)
def raw_stats_archive(context: AssetExecutionContext, broker: Broker, paths: Paths):
    cfg = settings()

    def progress(result) -> None:
        context.log.info(
            f"archived {result.messages} messages ({result.samples} samples, "
            f"{result.quarantined} quarantined)"
        )

    result = drain_queue(
        broker.amqp_url, broker.queue_name, paths.archive, paths.quarantine, paths.state,
        max_messages=cfg.drain_max_messages, max_seconds=cfg.drain_max_seconds,
        max_bytes=cfg.message_max_bytes, progress=progress,
    )
    yield MaterializeResult(
        metadata={
            "messages": result.messages,
            "samples": result.samples,
            "bytes": result.bytes,
            "hosts": len(result.hosts),
            "hours": sorted(result.hours)[:200],
            "quarantined": result.quarantined,
            "duplicates_skipped": result.duplicates,
            "headers_only": result.headers_only,
            "torn_bytes_cut": result.torn_bytes_cut,
            "quarantine_total": quarantine.count(paths.quarantine),
            "seconds": round(result.seconds, 3),
            "messages_per_s": round(result.messages / result.seconds, 1) if result.seconds else 0,
        }
    )
    yield AssetCheckResult(
        check_name="nothing_quarantined",
        passed=result.quarantined == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={"quarantined": result.quarantined, "reasons": str(result.reasons),
                  "where": str(paths.quarantine),
                  "messages": "\n".join(f"{r} -> {p}" for r, p in result.rejected[:20])},
    )


class ImportConfig(Config):
    directory: str


@op(description="Copy an existing <host>/<epoch> archive into ours, indexed; the hours "
    "it covers are marked for host_data (the sensor rebuilds them, or backfill them).")
def import_archive_op(context: OpExecutionContext, config: ImportConfig, paths: Paths):
    res = import_archive(Path(config.directory), paths.archive, paths.quarantine, paths.state)
    context.add_output_metadata({
        "files": res.files, "already_there": res.skipped, "samples": res.samples,
        "bytes": res.bytes, "bad_lines_quarantined": res.issues,
        "files_set_aside": res.rejected, "hosts": len(res.hosts),
        "hours": sorted(res.hours)[:200],
    })
    return len(res.hours)


@job(description="Import an existing HPCPerfStats archive directory (run config: directory).")
def import_archive_job():
    import_archive_op()
