"""Sensors: they look and request runs; the work happens in the runs.

- ``rabbitmq_sensor``: passive queue depth; one drain at a time.
- ``host_data_sensor`` / ``job_metrics_sensor``: turn pending markers (left by
  the drain and by host_data / slurm_jobs) into runs over contiguous ranges.
- ``accounting_sensor``: a new or changed accounting dump -> its day.

Runs are requested without run keys (a key is spent even by a failed run);
the cursor remembers when each key was last requested so a failed range is
retried after ``HPCPERF_RETRY_AFTER_S``, not every tick.
"""

import json
import re
import time
from collections.abc import Iterator

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from hpcperf_assets.aggregates import host_aggregates
from hpcperf_assets.archive import raw_stats_archive
from hpcperf_assets.host_data import host_data
from hpcperf_assets.job_applications import job_applications
from hpcperf_assets.job_flags import job_flags
from hpcperf_assets.job_tables import job_tables
from hpcperf_assets.jobs import slurm_jobs

from hpcperf_dagster.partitions import daily, hourly
from hpcperfstats.config import settings
from hpcperfstats.ingest.drain import queue_depth
from hpcperfstats.ingest.pending import Pending

DRAIN_TAG = "hpcperf/drain"

drain_job = define_asset_job("drain", selection=[raw_stats_archive], tags={DRAIN_TAG: "true"})
host_data_job = define_asset_job("host_data_job", selection=[host_data, host_aggregates])
slurm_jobs_job = define_asset_job("slurm_jobs_job", selection=[slurm_jobs])
job_metrics_job = define_asset_job("job_metrics_job",
                                   selection=[job_tables, job_flags, job_applications])

_ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
           DagsterRunStatus.STARTED]
_INTERVAL = settings().sensor_interval
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.txt$")


def _busy(context: SensorEvaluationContext, job_name: str) -> bool:
    runs = context.instance.get_run_records(
        RunsFilter(job_name=job_name, statuses=_ACTIVE), limit=1
    )
    return bool(runs)


@sensor(job=drain_job, minimum_interval_seconds=_INTERVAL,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests a bounded drain when the cluster's queue holds messages.")
def rabbitmq_sensor(context: SensorEvaluationContext):
    cfg = settings()
    if _busy(context, drain_job.name):
        return SkipReason("a drain is already running")
    try:
        depth = queue_depth(cfg.amqp_url, cfg.queue)
    except Exception as exc:  # broker down or queue not declared yet: look again later
        return SkipReason(f"queue {cfg.queue} not reachable: {type(exc).__name__}: {exc}")
    if depth == 0:
        return SkipReason(f"queue {cfg.queue} is empty")
    return RunRequest(tags={"hpcperf/queue_depth": str(depth)})


def contiguous(keys: list[str], all_keys: list[str]) -> Iterator[tuple[str, str]]:
    """Group ``keys`` into (first, last) runs of consecutive partition keys."""
    position = {k: i for i, k in enumerate(all_keys)}
    ordered = sorted((position[k], k) for k in keys if k in position)
    first = prev = None
    for pos, key in ordered:
        if first is None:
            first, prev_pos, prev = key, pos, key
        elif pos == prev_pos + 1:
            prev_pos, prev = pos, key
        else:
            yield first, prev
            first, prev_pos, prev = key, pos, key
    if first is not None:
        yield first, prev


def _pending_requests(context: SensorEvaluationContext, kind: str, partitions, job_name: str):
    if _busy(context, job_name):
        return SkipReason(f"a {job_name} run is in progress")
    cfg = settings()
    items = Pending(cfg.state_dir, kind).items()
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = time.time()

    def requested_recently(key: str) -> bool:
        # same marker already asked for, and its run had time to finish
        last = cursor.get(key)
        return last is not None and last[0] == items[key] and now - last[1] < cfg.retry_after_s

    valid = partitions.get_partition_keys()
    valid_set = set(valid)
    candidates = [k for k in items if not requested_recently(k)]
    unknown = [k for k in candidates if k not in valid_set]
    wanted = [k for k in candidates if k in valid_set]
    if unknown:
        context.log.warning(f"pending {kind} keys outside the partitions: {unknown[:5]}")
    if not wanted:
        return SkipReason(f"nothing pending for {kind}")
    requests = [
        RunRequest(tags={ASSET_PARTITION_RANGE_START_TAG: first,
                         ASSET_PARTITION_RANGE_END_TAG: last})
        for first, last in contiguous(wanted, valid)
    ]
    new_cursor = {k: v for k, v in cursor.items() if k in items}
    new_cursor.update({k: [items[k], now] for k in wanted})
    return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))


@sensor(job=host_data_job, minimum_interval_seconds=_INTERVAL,
        default_status=DefaultSensorStatus.RUNNING,
        description="Rebuilds the hours the drain archived samples for (late ones too).")
def host_data_sensor(context: SensorEvaluationContext):
    return _pending_requests(context, "host_data", hourly, host_data_job.name)


@sensor(job=job_metrics_job, minimum_interval_seconds=_INTERVAL,
        default_status=DefaultSensorStatus.RUNNING,
        description="Recomputes metrics of the job days whose data or accounting changed.")
def job_metrics_sensor(context: SensorEvaluationContext):
    return _pending_requests(context, "job_metrics", daily, job_metrics_job.name)


@sensor(job=slurm_jobs_job, minimum_interval_seconds=_INTERVAL,
        default_status=DefaultSensorStatus.RUNNING,
        description="Loads each new or changed accounting/<YYYY-MM-DD>.txt dump.")
def accounting_sensor(context: SensorEvaluationContext):
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
