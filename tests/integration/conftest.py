"""Helpers for driving the pipeline through Dagster as the daemon would."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context

from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.jobs.accounting import FIELDS


class Pipeline:
    """Evaluates sensors and executes the runs they request, in-process."""

    def __init__(self):
        from hpcperf_dagster.definitions import defs

        self.defs = defs
        self.instance = DagsterInstance.ephemeral()

    def evaluate(self, sensor_name: str) -> list[RunRequest]:
        sensor = self.defs.get_sensor_def(sensor_name)
        result = sensor(build_sensor_context(instance=self.instance))
        if isinstance(result, RunRequest):
            return [result]
        if isinstance(result, SensorResult):
            return list(result.run_requests or [])
        return []

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
