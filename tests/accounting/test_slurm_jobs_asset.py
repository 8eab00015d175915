"""``slurm_jobs`` through Dagster on the real test database: upserts and quarantine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from hpcperf_assets.jobs import slurm_jobs

from hpcperf_dagster.resources import Database, Paths

SACCT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "accounting" / "sacct"


def load_day(day: str) -> None:
    result = materialize([slurm_jobs], partition_key=day, instance=DagsterInstance.ephemeral(),
                         resources={"db": Database(), "paths": Paths()})
    assert result.success


@pytest.fixture
def accounting(hpcperf_env: Path) -> Path:
    folder = hpcperf_env / "accounting"
    shutil.copytree(SACCT_DIR, folder)
    return folder


def state_of(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT jobid, state, end_time IS NULL, source_day::text, hosts "
                            "FROM job_data").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.integration
@pytest.mark.parametrize("order", [("2026-03-19", "2026-03-20"), ("2026-03-20", "2026-03-19")])
def test_running_job_finished_later_keeps_the_newest_record(accounting, pg_url, order):
    for day in order:
        load_day(day)
    jobs = state_of(pg_url)
    assert jobs["3020"] == ("COMPLETED", False, "2026-03-20", ["c001-004"])
    assert len(jobs) == 12  # the truncated line is not a job
    assert jobs["3023"][0] == "CANCELLED" and jobs["3024"][0] == "OUT_OF_MEMORY"
    assert jobs["3025"][3] == ["c001-009", "c001-010"]


@pytest.mark.integration
def test_malformed_line_is_quarantined_with_file_and_line(accounting, hpcperf_env, pg_url):
    load_day("2026-03-19")
    records = [json.loads(p.read_text()) for p in (hpcperf_env / "quarantine").glob("*/*.json")]
    assert len(records) == 1
    text = json.dumps(records[0])
    assert "2026-03-19.txt:13" in text and "expected 19 fields" in text
    assert "3029" in state_of(pg_url)  # the line after the bad one loaded
