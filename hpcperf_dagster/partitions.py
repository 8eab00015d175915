"""Partitions: hourly by sample time for host data, daily for jobs.

Hourly keeps every asset far below Dagster's ~100k partitions for decades
(8,760 a year) and matches how late samples arrive; jobs are daily by the day
they ended, which is how accounting is dumped. ``end_offset=1`` makes the
current hour and day partitions too, so live data is loaded as it arrives
(the current partition is simply rebuilt again later).
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

from hpcperfstats.config import settings
from hpcperfstats.ingest.drain import HOUR_FORMAT

_START = settings().partition_start

hourly = HourlyPartitionsDefinition(
    start_date=_START.strftime(HOUR_FORMAT), timezone="UTC", end_offset=1
)
daily = DailyPartitionsDefinition(
    start_date=_START.strftime("%Y-%m-%d"), timezone="UTC", end_offset=1
)
