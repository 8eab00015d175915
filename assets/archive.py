"""``raw_stats_archive``: the hours of the raw archive, and the runs that fill it.

The archive is written by the drain (queue -> files) and the import (an old
archive's files), never rebuilt from anything, so it is an external asset
(``AssetSpec``): hourly partitions a person cannot materialise, reported as
materialised by the run that archived samples for them. A drain reports each
batch's hours after its fsync and before its ack (``drain_queue(archived=)``):
the event is in Dagster's storage before RabbitMQ forgets the messages.
"""

from pathlib import Path

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSpec,
    Config,
    OpExecutionContext,
    Output,
    op,
)

from hpcperf_dagster.lineage import RAW_ARCHIVE, archived_events
from hpcperf_dagster.partitions import hourly
from hpcperf_dagster.resources import Broker, Paths
from hpcperfstats.archive import quarantine
from hpcperfstats.config import settings
from hpcperfstats.ingest.drain import drain_queue
from hpcperfstats.ingest.importer import import_archive

raw_stats_archive = AssetSpec(
    RAW_ARCHIVE,
    partitions_def=hourly,
    group_name="ingest",
    description="Raw stats samples by the hour they were taken: archive/<host>/<epoch> files "
    "(fsync before ack). A partition is materialised each time a drain or an import "
    "archives samples for that hour (late ones too); unusable messages go to quarantine.",
)
nothing_quarantined = AssetCheckSpec(
    "nothing_quarantined", asset=RAW_ARCHIVE,
    description="No message of the latest drain was quarantined")


def _log_hours(context: OpExecutionContext, source: str):
    def archived(hours: set[str]) -> None:
        # written to the event log now, synchronously, before the batch's ack
        for event in archived_events(hours, source):
            context.log_event(event)
    return archived


@op(description="Drain the cluster's queue into the raw archive (bounded in messages and "
    "seconds); report the hours written as raw_stats_archive partitions.")
def drain_queue_op(context: OpExecutionContext, broker: Broker, paths: Paths
                   ) -> Output[dict]:
    cfg = settings()

    def progress(result) -> None:
        context.log.info(f"archived {result.messages} messages ({result.samples} samples, "
                         f"{result.quarantined} quarantined)")

    result = drain_queue(
        broker.amqp_url, broker.queue_name, paths.archive, paths.quarantine,
        max_messages=cfg.drain_max_messages, max_seconds=cfg.drain_max_seconds,
        max_bytes=cfg.message_max_bytes, progress=progress,
        archived=_log_hours(context, f"drain of queue {broker.queue_name}"),
    )
    summary = {
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
    context.log_event(AssetCheckEvaluation(
        asset_key=RAW_ARCHIVE, check_name=nothing_quarantined.name,
        passed=result.quarantined == 0, severity=AssetCheckSeverity.WARN,
        metadata={"quarantined": result.quarantined, "reasons": str(result.reasons),
                  "where": str(paths.quarantine),
                  "messages": "\n".join(f"{r} -> {p}" for r, p in result.rejected[:20])},
    ))
    return Output(summary, metadata=summary)


class ImportConfig(Config):
    directory: str


@op(description="Copy an existing <host>/<epoch> archive into ours, indexed; report the "
    "hours it covers as raw_stats_archive partitions (host_data follows).")
def import_archive_op(context: OpExecutionContext, config: ImportConfig, paths: Paths) -> int:
    res = import_archive(Path(config.directory), paths.archive, paths.quarantine)
    for event in archived_events(res.hours, f"import of {config.directory}"):
        context.log_event(event)
    context.add_output_metadata({
        "files": res.files, "already_there": res.skipped, "samples": res.samples,
        "bytes": res.bytes, "bad_lines_quarantined": res.issues,
        "files_set_aside": res.rejected, "hosts": len(res.hosts),
        "hours": sorted(res.hours)[:200],
    })
    return len(res.hours)
