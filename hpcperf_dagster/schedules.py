"""Schedules: the newest complete job day, every night.

Sensors already rebuild days whose data changed; the schedule guarantees the
previous UTC day is built once its accounting dump and last samples are in,
even on a quiet day where no sensor fired. Older days: backfills.
"""

from datetime import timedelta

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from hpcperf_dagster.sensors import job_metrics_job


@schedule(job=job_metrics_job, cron_schedule="30 2 * * *", execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Job series, metrics, coverage, flags and applications of the previous "
          "UTC day.")
def job_day_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"job_day:{day}", partition_key=day)
