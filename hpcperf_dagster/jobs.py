"""Jobs, sensors and schedules of the code location, in one place.

What starts what (every trigger's state lives in Dagster's storage):

- ``rabbitmq_sensor`` -> ``drain_job``: the queue holds messages; one drain at
  a time. The drain reports the hours it archived as ``raw_stats_archive``
  partitions.
- ``automation_sensor`` (declarative automation, running by default): any
  ``host_data`` hour whose archive partition is newer is rebuilt, with its
  ``host_aggregates``, in runs of at most ``HPCPERF_HOURS_PER_RUN`` hours;
  failed partitions of every asset are retried after ``HPCPERF_RETRY_AFTER_S``.
- ``accounting_sensor`` -> ``slurm_jobs_job``: a new or changed dump.
- ``job_days_sensor`` -> ``job_tables_job``: the job days that new
  ``host_data`` hours and accounting dumps name (``job_days`` metadata).
- ``job_tables_schedule`` (nightly) and ``archive_day_schedule``.

Job names end in ``_job``, sensors in ``_sensor``, schedules in
``_schedule``; with a clusters file each begins with the cluster
(``stampede3_drain_job``: ``hpcperf_dagster.location``). Intervals come from
``HPCPERF_SENSOR_INTERVAL`` and ``HPCPERF_AUTOMATION_INTERVAL``, read when the
definitions are built (``definitions.py``), not at import.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    job,
    schedule,
    sensor,
)
from hpcperf_assets.aggregates import host_aggregates
from hpcperf_assets.archive import drain_queue_op, import_archive_op
from hpcperf_assets.host_data import host_data
from hpcperf_assets.job_applications import job_applications
from hpcperf_assets.job_flags import job_flags
from hpcperf_assets.job_tables import job_tables
from hpcperf_assets.jobs import slurm_jobs
from hpcperf_assets.offsite import CATCH_UP_DAYS, archive_day

from hpcperf_dagster.location import named
from hpcperf_dagster.partitions import daily
from hpcperfstats.config import settings
from hpcperfstats.ingest.drain import queue_depth

#: run tag of drains: the run queue never starts two at once (dagster.yaml)
DRAIN_TAG = "hpcperf/drain"
#: materialisations read per asset and tick by ``job_days_sensor``
EVENTS_PER_TICK = 1000


@job(name=named("drain_job"), tags={DRAIN_TAG: "true"},
     description="Drain the cluster's queue into the raw archive (bounded); report the "
     "hours written as raw_stats_archive partitions.")
def drain_job():
    drain_queue_op()


@job(name=named("import_archive_job"),
     description="Import an existing HPCPerfStats archive directory (run config: directory).")
def import_archive_job():
    import_archive_op()


host_data_job = define_asset_job(
    named("host_data_job"), selection=[host_data, host_aggregates],
    description="host_data and host_aggregates over hours (backfills: runs of "
    "HPCPERF_HOURS_PER_RUN hours).")
slurm_jobs_job = define_asset_job(named("slurm_jobs_job"), selection=[slurm_jobs])
job_tables_job = define_asset_job(
    named("job_tables_job"), selection=[job_tables, job_flags, job_applications],
    description="job_series (and its rollup), job_metrics, job_coverage, job_flags and "
    "job_applications of "
    "job end days.")
archive_day_job = define_asset_job(named("archive_day_job"), AssetSelection.assets(archive_day))

JOBS = [drain_job, import_archive_job, host_data_job, slurm_jobs_job, job_tables_job,
        archive_day_job]

_ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
           DagsterRunStatus.STARTED]
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.txt$")


def _busy(instance: DagsterInstance, job_name: str) -> bool:
    return bool(instance.get_run_records(RunsFilter(job_name=job_name, statuses=_ACTIVE),
                                         limit=1))


def rabbitmq_tick(context: SensorEvaluationContext):
    """A drain when the queue holds messages and none is running."""
    cfg = settings()
    if _busy(context.instance, drain_job.name):
        return SkipReason("a drain is already running")
    try:
        depth = queue_depth(cfg.amqp_url, cfg.queue)
    except Exception as exc:  # broker down or queue not declared yet: look again later
        return SkipReason(f"queue {cfg.queue} not reachable: {type(exc).__name__}: {exc}")
    if depth == 0:
        return SkipReason(f"queue {cfg.queue} is empty")
    return RunRequest(tags={"hpcperf/queue_depth": str(depth)})


def accounting_tick(context: SensorEvaluationContext):
    """A ``slurm_jobs`` run per new or changed ``accounting/<day>.txt``."""
    folder = settings().accounting_dir
    if not folder.is_dir():
        return SkipReason(f"no accounting directory {folder}")
    seen = json.loads(context.cursor) if context.cursor else {}
    valid = set(daily.get_partition_keys())
    requests = []
    for path in sorted(folder.iterdir()):
        match = _DAY_FILE.match(path.name)
        if not match or match.group(1) not in valid:
            continue
        mtime = path.stat().st_mtime_ns
        if seen.get(path.name) != mtime:
            requests.append(RunRequest(run_key=f"{path.name}:{mtime}",
                                       partition_key=match.group(1)))
            seen[path.name] = mtime
    if not requests:
        return SkipReason("no new accounting dumps")
    return SensorResult(run_requests=requests, cursor=json.dumps(seen))


def job_days_since(instance: DagsterInstance, cursor: dict[str, str]
                   ) -> tuple[set[str], dict[str, str]]:
    """Job days named by ``host_data``/``slurm_jobs`` materialisations after ``cursor``."""
    days: set[str] = set()
    after = dict(cursor)
    for asset in (host_data, slurm_jobs):
        name = asset.key.to_user_string()
        found = instance.fetch_materializations(asset.key, limit=EVENTS_PER_TICK,
                                                cursor=cursor.get(name), ascending=True)
        for record in found.records:
            value = record.asset_materialization.metadata.get("job_days")
            days.update(value.value if value is not None else [])
        if found.records:
            after[name] = found.cursor
    return days, after


def job_days_tick(context: SensorEvaluationContext):
    """One ``job_tables_job`` run per job day that new hours or dumps touched."""
    if _busy(context.instance, job_tables_job.name):
        return SkipReason("a job_tables_job run is in progress: its days are asked next")
    cursor = json.loads(context.cursor) if context.cursor else {}
    days, after = job_days_since(context.instance, cursor)
    valid = set(daily.get_partition_keys())
    unknown = sorted(days - valid)
    if unknown:
        context.log.warning(f"job days outside the partitions: {unknown[:5]}")
    requests = [RunRequest(partition_key=day) for day in sorted(days & valid)]
    if not requests and after == cursor:
        return SkipReason("no new host_data hours or accounting dumps")
    return SensorResult(run_requests=requests, cursor=json.dumps(after))


def sensors(interval: int, automation_interval: int) -> list[SensorDefinition]:
    """Every sensor, running by default: the automation ticks every
    ``automation_interval`` seconds (fewer, longer host_data runs while drains go
    on), the others every ``interval``."""
    running = DefaultSensorStatus.RUNNING
    return [
        sensor(name=named("rabbitmq_sensor"), job=drain_job, minimum_interval_seconds=interval,
               default_status=running,
               description="Requests a bounded drain when the cluster's queue holds messages."
               )(rabbitmq_tick),
        sensor(name=named("accounting_sensor"), job=slurm_jobs_job,
               minimum_interval_seconds=interval,
               default_status=running,
               description="Loads each new or changed accounting/<YYYY-MM-DD>.txt dump."
               )(accounting_tick),
        sensor(name=named("job_days_sensor"), job=job_tables_job, minimum_interval_seconds=interval,
               default_status=running,
               description="Rebuilds the job days whose jobs new host_data hours or "
               "accounting dumps touch (their job_days metadata)."
               )(job_days_tick),
        AutomationConditionSensorDefinition(
            named("automation_sensor"), target=AssetSelection.all(), default_status=running,
            minimum_interval_seconds=automation_interval,
            description="Declarative automation: rebuilds every host_data hour (and its "
            "aggregates) whose raw archive partition is newer; retries failed partitions."),
    ]


@schedule(name=named("job_tables_schedule"), job=job_tables_job, cron_schedule="30 2 * * *",
          execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Job series, metrics, coverage, flags and applications of the previous "
          "UTC day.")
def job_tables_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    # sensors rebuild days whose data changed; this builds the previous day once
    # its accounting dump and last samples are in, even on a quiet day
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return RunRequest(run_key=f"job_day:{day}", partition_key=day)


@schedule(name=named("archive_day_schedule"), job=archive_day_job, cron_schedule="15 3 * * *",
          execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Export every closed day of the last two weeks not yet exported.")
def archive_day_schedule(context: ScheduleEvaluationContext):
    done = context.instance.get_materialized_partitions(archive_day.key)
    keys = daily.get_partition_keys(current_time=context.scheduled_execution_time)
    # the day that ended at midnight is closed once each host has sent after it
    today = context.scheduled_execution_time.strftime("%Y-%m-%d")
    stamp = context.scheduled_execution_time.strftime("%Y%m%d")
    for key in [k for k in keys if k < today][-CATCH_UP_DAYS:]:
        if key not in done:
            yield RunRequest(run_key=f"archive_day:{key}:{stamp}", partition_key=key)


SCHEDULES = [job_tables_schedule, archive_day_schedule]
