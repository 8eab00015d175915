"""``raw_stats_archive``: drain the cluster's queue into the raw archive."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from hpcperf_dagster.resources import Broker, Paths
from hpcperfstats import quarantine
from hpcperfstats.config import settings
from hpcperfstats.drain import drain_queue


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
                  "where": str(paths.quarantine)},
    )
