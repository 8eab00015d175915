"""``hpcperf import-archive DIR``: import an existing archive, then tell Dagster its hours.

The import itself is ``hpcperfstats.ingest.importer``; each hour it archived
samples for is reported as a ``raw_stats_archive`` partition, so ``host_data``
follows by the automation (``hpcperf_dagster.lineage``).
"""

from __future__ import annotations

from hpcperf_dagster.lineage import report_archived_to_instance
from hpcperfstats.ingest.importer import run


def main(argv: list[str] | None = None) -> int:
    directory, res, cluster = run(argv)
    print(report_archived_to_instance(res.hours, f"hpcperf import-archive {directory}", cluster))
    return 0
