"""Optional: a live single-host Slurm, a short job mix, checked against its own sacct.

Off by default (set ``HPCPERF_LIVE_SLURM=1``): it needs root and Debian's
``slurmctld slurmd slurm-client slurmdbd munge mariadb-server`` (``./scripts/setup
slurmctld slurmd slurm-client slurmdbd munge mariadb-server``), writes job
cgroups on this machine and takes about two minutes. ``scripts/record-slurm-run``
with ``RECORD_MIX=quick`` brings Slurm (MariaDB, munge, slurmdbd, slurmctld,
slurmd; up in seconds), RabbitMQ and our monitor up, runs a busy and an idle
job side by side and stops every daemon it started; its ``slurm.conf`` stores
job scripts, and the dump collects them (``--scripts``). The recorded run
(``test_slurm_run.py``) is what CI checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hpcperfstats.jobs.scripts import read_scripts

from .slurm_replay import replay, sacct_steps, total_cpu_s

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "record-slurm-run"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("HPCPERF_LIVE_SLURM") != "1",
                       reason="set HPCPERF_LIVE_SLURM=1 to bring up a real Slurm (root)"),
]


def test_live_slurm_busy_and_idle_jobs_match_sacct(tmp_path: Path, pg_server, rabbit):
    if os.geteuid() != 0 or not shutil.which("slurmd"):
        pytest.skip("needs root and Debian's Slurm packages")
    out = tmp_path / "run"
    subprocess.run([str(SCRIPT), str(out)], env={**os.environ, "RECORD_MIX": "quick"},
                   check=True, timeout=600)
    steps = sacct_steps(out)
    result = replay(out, pg_server, rabbit, tmp_path / "replay")
    assert len(steps) == 2 and set(result["metrics"]) == set(steps)
    by_name = {r["JobName"]: r for r in steps.values()}
    for name, tolerance in (("busy", 0.1), ("idle", 0.02)):
        row = by_name[name]
        expected = total_cpu_s(row["TotalCPU"]) / total_cpu_s(row["Elapsed"])
        cores, _, source = result["metrics"][row["JobID"]]["cpu_cores_avg"]
        assert source == "cgroup"
        assert cores == pytest.approx(expected, abs=tolerance), name
    idle = by_name["idle"]["JobID"]
    assert "low_cpu_efficiency" in result["flags"][idle]
    assert all(f <= 1.0 for *_, f in result["coverage"].values())
    assert len([m for m in result["archive"] if not m.endswith(".idx")]) == 1  # one header
    # job scripts (AccountingStoreFlags=job_script, hpcperf-sacct-dump --scripts): what
    # sbatch --wrap stored for each job, through sacct --batch-script
    (side,) = (out / "accounting").glob("*.scripts.jsonl")
    scripts, problems = read_scripts(side.read_text())
    assert problems == []
    for name, command in (("busy", 'while :; do :; done'), ("idle", "sleep 30")):
        text = scripts[by_name[name]["JobID"]].decode()
        assert text.startswith("#!/bin/sh\n# This script was created by sbatch --wrap.")
        assert command in text, name
