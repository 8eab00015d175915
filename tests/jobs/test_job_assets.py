"""The job assets in Dagster: checks, flags' rule lineage, the nightly schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from dagster import DagsterInstance, build_schedule_context, materialize
from demo_db import load_demo
from hpcperf_assets.job_flags import job_flags
from hpcperf_assets.job_tables import job_tables

from hpcperf_dagster.jobs import job_tables_schedule
from hpcperf_dagster.resources import Database, Paths


@pytest.mark.integration
def test_a_job_day_materialises_with_passing_checks(hpcperf_env, pg_url, tmp_path):
    load_demo(pg_url, tmp_path / "demo")
    with psycopg.connect(pg_url) as conn:
        conn.execute("TRUNCATE job_series, job_series_rollup, job_metrics, job_coverage, "
                     "job_flags")
    result = materialize([job_tables, job_flags], partition_key="2026-11-20",
                         instance=DagsterInstance.ephemeral(),
                         resources={"db": Database(), "paths": Paths()})
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"metrics_within_bounds": True, "jobs_with_data_have_metrics": True}
    mats = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert set(mats) == {"job_series", "job_series_rollup", "job_metrics", "job_coverage",
                         "job_flags"}
    assert mats["job_flags"]["rules_version"].value == job_flags.code_versions_by_key[
        job_flags.key]
    with psycopg.connect(pg_url) as conn:
        days = conn.execute("SELECT DISTINCT day::text FROM job_metrics").fetchall()
        n_flags = conn.execute("SELECT count(*) FROM job_flags").fetchone()[0]
    assert days == [("2026-11-20",)]  # the 21st's jobs wait for their own partition
    assert n_flags == mats["job_flags"]["flags"].value > 0


def test_nightly_schedule_builds_the_previous_utc_day():
    from hpcperf_dagster.definitions import defs

    ctx = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 21, 2, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def())
    request = job_tables_schedule.evaluate_tick(ctx).run_requests[0]
    assert request.partition_key == "2026-11-20"


@pytest.mark.integration
def test_job_metrics_alone_is_selectable(hpcperf_env, pg_url, tmp_path):
    """``--select job_metrics``: the multi-asset is subsettable (can_subset) and
    rebuilds that table only (DESIGN.md trap: DagsterInvalidSubsetError)."""
    from dagster import AssetKey

    load_demo(pg_url, tmp_path / "demo")
    with psycopg.connect(pg_url) as conn:
        conn.execute("TRUNCATE job_series, job_series_rollup, job_metrics, job_coverage")
    result = materialize([job_tables], partition_key="2026-11-20",
                         selection=[AssetKey("job_metrics")],
                         instance=DagsterInstance.ephemeral(),
                         resources={"db": Database(), "paths": Paths()})
    assert result.success
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert mats == {"job_metrics"}
    with psycopg.connect(pg_url) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("job_metrics", "job_series", "job_coverage")]
    assert counts[0] > 0 and counts[1:] == [0, 0]
