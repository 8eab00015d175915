"""Replay a recorded Slurm run (``scripts/record-slurm-run``) through the pipeline.

Publishes the run's messages to the test broker, runs the sensors and jobs
Dagster's daemon would (drain, host_data, slurm_jobs, job tables and flags)
in-process on a fresh instance, and returns what the tables hold.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from hpcperfstats.report.terminal import load_report

from .conftest import Pipeline, publish


def read_messages(run_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((run_dir / "messages").glob("*.txt"))]


def total_cpu_s(text: str) -> float:
    """sacct's TotalCPU (``[D-][HH:]MM:SS[.mmm]``) in seconds."""
    days, _, rest = text.rpartition("-")
    parts = [float(x) for x in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return (int(days or 0) * 24 + parts[0]) * 3600 + parts[1] * 60 + parts[2]


def sacct_steps(run_dir: Path) -> dict[str, dict[str, str]]:
    """Job lines (not steps) of the run's ``sacct-steps.txt``, by JobID."""
    lines = (run_dir / "sacct-steps.txt").read_text().splitlines()
    header = lines[0].split("|")
    rows = [dict(zip(header, line.split("|", len(header) - 1), strict=True))
            for line in lines[1:] if line]
    return {r["JobID"]: r for r in rows if "." not in r["JobID"]}


def replay(run_dir: Path, pg_server: str, rabbit, work: Path) -> dict:
    """Every table's rows after the run went through the pipeline."""
    home = work / "hpcperf"
    home.mkdir(parents=True)
    queue = "slurmrun" + work.name[-6:].replace("-", "")
    with pytest.MonkeyPatch.context() as mp, psycopg.connect(pg_server) as conn:
        from hpcperfstats.db.schema import ensure_schema

        ensure_schema(conn)
        conn.execute("TRUNCATE host_data, job_data, job_metrics, job_series, job_series_rollup, "
                     "job_coverage, "
                     "job_flags")
        conn.commit()
        mp.setenv("HPCPERF_HOME", str(home))
        mp.setenv("HPCPERF_DATABASE_URL", pg_server)
        mp.setenv("HPCPERF_AMQP_URL", rabbit.url)
        mp.setenv("HPCPERF_CLUSTER", queue)
        pipeline = Pipeline()
        publish(rabbit.url, queue, read_messages(run_dir))
        drains = pipeline.evaluate("rabbitmq_sensor")
        out = {"drained": pipeline.execute("drain_job", drains[0]).output_for_node(
            "drain_queue_op")}
        pipeline.follow()
        shutil.copytree(run_dir / "accounting", home / "accounting")
        for request in pipeline.evaluate("accounting_sensor"):
            pipeline.execute("slurm_jobs_job", request)
        pipeline.run_sensor("job_days_sensor", "job_tables_job")
        out["archive"] = sorted(p.name for host in (home / "archive").iterdir()
                                for p in host.iterdir())
        out["metrics"] = {}
        for jobid, metric, value, reason, source in conn.execute(
                "SELECT jobid, metric, value, reason, source FROM job_metrics"):
            out["metrics"].setdefault(jobid, {})[metric] = (value, reason, source)
        out["coverage"] = {j: (e, p, x, f) for j, e, p, x, f in conn.execute(
            "SELECT jobid, expected, present, extra, fraction FROM job_coverage")}
        out["flags"] = {}
        for jobid, flag in conn.execute("SELECT jobid, flag FROM job_flags"):
            out["flags"].setdefault(jobid, set()).add(flag)
        out["reports"] = {j: load_report(conn, j) for j in out["metrics"]}
        out["series"] = conn.execute(
            "SELECT jobid, series, max(value), count(*) FROM job_series GROUP BY 1, 2"
        ).fetchall()
    return out
