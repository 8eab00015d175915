"""Helpers for driving the pipeline through Dagster as the daemon would."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    SensorResult,
    build_sensor_context,
    evaluate_automation_conditions,
)

from hpcperfstats.config import settings
from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.jobs.accounting import FIELDS

#: the run tags of a ranged run, as a backfill of a multi-run policy sets them
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
HOURLY = (AssetKey("host_data"), AssetKey("host_aggregates"))


def ranges(keys: set[str], all_keys: list[str], most: int) -> list[tuple[str, str]]:
    """Consecutive partition keys as (first, last), at most ``most`` each (a backfill's runs)."""
    pos = {key: i for i, key in enumerate(all_keys)}
    runs: list[list[str]] = []
    for key in sorted(keys, key=pos.__getitem__):
        if runs and pos[key] == pos[runs[-1][-1]] + 1 and len(runs[-1]) < most:
            runs[-1].append(key)
        else:
            runs.append([key])
    return [(run[0], run[-1]) for run in runs]


class Pipeline:
    """Evaluates sensors and automation and executes the runs they request, in-process.

    Sensor cursors and the automation cursor are kept between evaluations, as
    the daemon keeps them in the instance.
    """

    def __init__(self):
        from hpcperf_dagster.definitions import defs

        self.defs = defs
        self.instance = DagsterInstance.ephemeral()
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None

    def evaluate(self, sensor_name: str) -> list[RunRequest]:
        sensor = self.defs.get_sensor_def(sensor_name)
        result = sensor(build_sensor_context(instance=self.instance,
                                             cursor=self.cursors.get(sensor_name)))
        if isinstance(result, RunRequest):
            return [result]
        if isinstance(result, SensorResult):
            if result.cursor is not None:
                self.cursors[sensor_name] = result.cursor
            return list(result.run_requests or [])
        return []

    def automate(self) -> dict[AssetKey, set[str]]:
        """One tick of the automation sensor: the partitions it requests, by asset."""
        result = evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                cursor=self.automation_cursor)
        self.automation_cursor = result.cursor
        keys = self.defs.resolve_asset_graph().get_all_asset_keys()
        return {key: set(result.get_requested_partitions(key)) for key in keys
                if result.get_num_requested(key)}

    def follow(self, requested: dict[AssetKey, set[str]] | None = None) -> list:
        """Run what an automation tick requests (this one's, or a new tick's): host_data
        hours in runs of at most ``HPCPERF_HOURS_PER_RUN`` consecutive hours, as the
        daemon's backfill does."""
        requested = dict(self.automate() if requested is None else requested)
        hours = set().union(*(requested.pop(key, set()) for key in HOURLY))
        assert not requested, f"unexpected automation requests: {requested}"
        job = self.defs.resolve_job_def("host_data_job")
        all_keys = job.partitions_def.get_partition_keys()
        out = []
        for first, last in ranges(hours, all_keys, settings().hours_per_run):
            tags = dict(zip(RANGE_TAGS, (first, last), strict=True))
            out.append(self.execute("host_data_job", RunRequest(tags=tags)))
        return out

    def execute(self, job_name: str, request: RunRequest):
        job = self.defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=self.instance, tags=request.tags, partition_key=request.partition_key
        )
        assert result.success
        return result

    def run_sensor(self, sensor_name: str, job_name: str) -> list:
        """Evaluate a sensor and execute every run it asks for."""
        return [self.execute(job_name, req) for req in self.evaluate(sensor_name)]


@pytest.fixture
def pipeline(hpcperf_env, rabbit, monkeypatch, tmp_path) -> Pipeline:
    """A fresh Dagster instance on the test database, broker and directories."""
    monkeypatch.setenv("HPCPERF_AMQP_URL", rabbit.url)
    monkeypatch.setenv("HPCPERF_CLUSTER", "q" + tmp_path.name.replace("-", "")[-12:])
    return Pipeline()


def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    publish_messages(url, queue, bodies)


def accounting_text(jobid: str, start: str, end: str, host: str, ncpus: int) -> str:
    """A one-job accounting dump in the sacct --parsable2 format."""
    values = {
        "JobID": jobid, "JobIDRaw": jobid, "User": "alice", "Account": "A-ccsc",
        "Partition": "normal", "QOS": "normal", "JobName": "train", "State": "COMPLETED",
        "ExitCode": "0:0", "Submit": start, "Start": start, "End": end,
        "Elapsed": "01:20:00", "Timelimit": "02:00:00", "NNodes": "1", "NCPUS": str(ncpus),
        "ReqMem": "0", "AllocTRES": f"cpu={ncpus},node=1", "NodeList": host,
    }
    return "|".join(FIELDS) + "\n" + "|".join(values.get(f, "") for f in FIELDS) + "\n"
