"""The code location of ``HPCPERF_CLUSTER``: assets, jobs, sensors, schedules and
resources in one place (each cluster's location is this module in its own process:
``hpcperf_dagster.locations``)."""

from __future__ import annotations

from dagster import Definitions
from hpcperf_assets.aggregates import host_aggregates
from hpcperf_assets.alerts import alerts_job, alerts_schedule, alerts_sent, alerts_to_send
from hpcperf_assets.archive import raw_stats_archive
from hpcperf_assets.host_data import host_data
from hpcperf_assets.job_applications import job_applications
from hpcperf_assets.job_flags import job_flags
from hpcperf_assets.job_tables import job_tables
from hpcperf_assets.jobs import slurm_jobs
from hpcperf_assets.offsite import archive_day

from hpcperf_dagster.jobs import JOBS, SCHEDULES, sensors
from hpcperf_dagster.resources import resources
from hpcperfstats.config import settings

_cfg = settings()
#: the cluster this process's location serves
CLUSTER = _cfg.cluster
defs = Definitions(
    assets=[raw_stats_archive, host_data, host_aggregates, slurm_jobs, job_tables, job_flags,
            job_applications, archive_day, alerts_to_send, alerts_sent],
    jobs=[*JOBS, alerts_job],
    sensors=sensors(_cfg.sensor_interval, _cfg.automation_interval),
    schedules=[*SCHEDULES, alerts_schedule],
    resources=resources(),
)
