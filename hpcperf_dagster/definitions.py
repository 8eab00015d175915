"""The code location: assets, checks, jobs, sensors and resources in one place."""

from __future__ import annotations

from dagster import Definitions
from hpcperf_assets.aggregates import host_aggregates
from hpcperf_assets.alerts import alerts_job, alerts_schedule, alerts_sent, alerts_to_send
from hpcperf_assets.archive import import_archive_job, raw_stats_archive
from hpcperf_assets.host_data import host_data
from hpcperf_assets.job_applications import job_applications
from hpcperf_assets.job_flags import job_flags
from hpcperf_assets.job_tables import job_tables
from hpcperf_assets.jobs import slurm_jobs
from hpcperf_assets.offsite import archive_day, archive_day_job, archive_day_schedule

from hpcperf_dagster.resources import resources
from hpcperf_dagster.schedules import job_day_schedule
from hpcperf_dagster.sensors import (
    accounting_sensor,
    drain_job,
    host_data_job,
    host_data_sensor,
    job_metrics_job,
    job_metrics_sensor,
    rabbitmq_sensor,
    slurm_jobs_job,
)

defs = Definitions(
    assets=[raw_stats_archive, host_data, slurm_jobs, job_tables, job_flags,
            job_applications, archive_day, host_aggregates, alerts_to_send, alerts_sent],
    jobs=[drain_job, host_data_job, import_archive_job, slurm_jobs_job, job_metrics_job,
          archive_day_job, alerts_job],
    sensors=[rabbitmq_sensor, host_data_sensor, job_metrics_sensor, accounting_sensor],
    schedules=[job_day_schedule, archive_day_schedule, alerts_schedule],
    resources=resources(),
)
