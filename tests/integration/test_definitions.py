"""The code location loads as Dagster loads it: ``dagster definitions validate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    out = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path),
             "HPCPERF_HOME": str(tmp_path / "home")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "All code locations passed validation" in out.stderr + out.stdout


def test_definitions_hold_every_stage():
    from hpcperf_dagster.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_stats_archive", "host_data", "slurm_jobs", "job_metrics"} <= keys
    sensors = {s.name for s in defs.sensors}
    assert {"rabbitmq_sensor", "host_data_sensor", "job_metrics_sensor",
            "accounting_sensor"} <= sensors
