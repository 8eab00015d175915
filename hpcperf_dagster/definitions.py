"""The code location: assets, jobs, sensors, schedules and resources in one place."""

from __future__ import annotations

from dagster import Definitions

from hpcperf_dagster.assets.aggregates import host_aggregates
from hpcperf_dagster.assets.archive import raw_stats_archive
from hpcperf_dagster.assets.host_data import host_data
from hpcperf_dagster.assets.job_flags import job_flags
from hpcperf_dagster.assets.job_tables import job_tables
from hpcperf_dagster.assets.jobs import slurm_jobs
from hpcperf_dagster.assets.offsite import archive_day
from hpcperf_dagster.jobs import JOBS, SCHEDULES, sensors
from hpcperf_dagster.resources import resources
from hpcperfstats.config import settings

_cfg = settings()
defs = Definitions(
    assets=[raw_stats_archive, host_data, host_aggregates, slurm_jobs, job_tables, job_flags,
            archive_day],
    jobs=JOBS,
    sensors=sensors(_cfg.sensor_interval, _cfg.automation_interval),
    schedules=SCHEDULES,
    resources=resources(),
)
