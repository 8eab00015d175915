"""``hpcperf demo --exit-when-done`` stops only once Dagster has nothing left to do."""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, DagsterInstance, DagsterRunStatus
from hpcperf_demo.run import DEMO_ASSETS, dagster_settled


def test_settled_needs_every_asset_and_no_run_in_progress():
    with DagsterInstance.ephemeral() as instance:
        settled, line = dagster_settled(instance)
        assert not settled and f"not yet materialised {len(DEMO_ASSETS)}" in line
        for name in DEMO_ASSETS[:-1]:
            instance.report_runless_asset_event(AssetMaterialization(AssetKey(name)))
        settled, line = dagster_settled(instance)
        assert not settled and "not yet materialised 1" in line  # the last one missing
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(DEMO_ASSETS[-1])))
        assert dagster_settled(instance) == (
            True, "runs in progress 0 | assets not yet materialised 0")
        # a run still going (job_flags being rewritten, say) holds the exit back
        from dagster._core.test_utils import create_run_for_test

        create_run_for_test(instance, job_name="job_flags_job", status=DagsterRunStatus.STARTED)
        settled, line = dagster_settled(instance)
        assert not settled and "runs in progress 1" in line
