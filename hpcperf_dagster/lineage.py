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

from hpcperf_dagster.location import asset_key

#: this process's cluster's archive (``<cluster>/raw_stats_archive`` with a clusters file)
RAW_ARCHIVE = asset_key("raw_stats_archive")


def raw_archive_key(cluster: str | None = None) -> AssetKey:
    """``cluster``'s ``raw_stats_archive`` key (default: this process's cluster)."""
    return asset_key("raw_stats_archive", cluster)


def archived_events(hours: Iterable[str], source: str, cluster: str | None = None
                    ) -> list[AssetMaterialization]:
    """One ``raw_stats_archive`` materialisation of ``cluster`` per hour (partition key)."""
    key = raw_archive_key(cluster)
    return [AssetMaterialization(key, partition=hour, metadata={"source": source})
            for hour in sorted(hours)]


def report_archived(instance: DagsterInstance, hours: Iterable[str], source: str,
                    cluster: str | None = None) -> int:
    """Report hours archived outside a run (demo, ``hpcperf import-archive``) to
    ``cluster``'s location (default: ``HPCPERF_CLUSTER``)."""
    events = archived_events(hours, source, cluster)
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)


def report_archived_to_instance(hours: set[str], source: str, cluster: str | None = None
                                ) -> str:
    """Report to ``$DAGSTER_HOME``'s instance, to ``cluster``'s location; what was done,
    in words."""
    if not hours:
        return "no new hours to report to Dagster"
    if not os.environ.get("DAGSTER_HOME"):
        first, last = min(hours), max(hours)
        return (f"DAGSTER_HOME is not set, so Dagster was not told: backfill host_data "
                f"from {first} to {last} (hpcperf backfill host_data {first} {last}"
                f"{f' --cluster {cluster}' if cluster else ''})")
    with DagsterInstance.get() as instance:
        n = report_archived(instance, hours, source, cluster)
    return (f"{n} hours reported to Dagster as "
            f"{raw_archive_key(cluster).to_user_string()} partitions")
