"""Which hours of the raw archive hold samples: told to Dagster, nowhere else.

A drain, an import or the demo reports each hour it archived samples for as a
materialisation of that ``raw_stats_archive`` partition. ``host_data``
follows by declarative automation (``hpcperf_dagster.jobs``): an hour whose
archive partition was materialised after its ``host_data`` partition is
stale and is rebuilt, so a late sample makes exactly its own hour stale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from dagster import AssetKey, AssetMaterialization, DagsterInstance

RAW_ARCHIVE = AssetKey("raw_stats_archive")


def archived_events(hours: Iterable[str], source: str) -> list[AssetMaterialization]:
    """One ``raw_stats_archive`` materialisation per hour (partition key)."""
    return [AssetMaterialization(RAW_ARCHIVE, partition=hour, metadata={"source": source})
            for hour in sorted(hours)]


def report_archived(instance: DagsterInstance, hours: Iterable[str], source: str) -> int:
    """Report hours archived outside a run (demo, ``hpcperf import-archive``)."""
    events = archived_events(hours, source)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)


def report_archived_to_instance(hours: set[str], source: str) -> str:
    """Report to ``$DAGSTER_HOME``'s instance; what was done, in words."""
    if not hours:
        return "no new hours to report to Dagster"
    if not os.environ.get("DAGSTER_HOME"):
        first, last = min(hours), max(hours)
        return (f"DAGSTER_HOME is not set, so Dagster was not told: backfill host_data "
                f"from {first} to {last} (hpcperf backfill host_data {first} {last})")
    with DagsterInstance.get() as instance:
        n = report_archived(instance, hours, source)
    return f"{n} hours reported to Dagster as raw_stats_archive partitions"
