"""The shipped Slurm prolog/epilog scripts and systemd unit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PACKAGING = Path(__file__).resolve().parents[2] / "monitor" / "packaging"


def run_script(name: str, tmp_path: Path, **slurm: str) -> list[str]:
    """Run a script with a stub monitor that records its arguments."""
    stub = tmp_path / "stub"
    record = tmp_path / "args"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    stub.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HPCPERF_MONITOR_BIN": str(stub),
           "HPCPERF_PROLOG_DEFAULTS": str(tmp_path / "none"),
           "HPCPERF_PROLOG_LOG": str(tmp_path / "prolog.log"), **slurm}
    result = subprocess.run(["sh", str(PACKAGING / name)], env=env, timeout=30)
    assert result.returncode == 0
    return record.read_text().splitlines() if record.exists() else []


def test_prolog_plain_job_with_gpus(tmp_path: Path):
    args = run_script("prolog.sh", tmp_path, SLURM_JOB_ID="812", SLURM_JOB_GPUS="0,1")
    assert args == ["--config", "/etc/hpcperfstats/monitor.conf", "--begin", "812",
                    "--gpus", "0,1"]


def test_item2_array_task_is_named_by_its_raw_id(tmp_path: Path):
    """Slurm names the cgroup by the raw id and 22.05's prolog has no SLURM_ARRAY_*:
    the raw id on every version, joined to accounting's JobIDRaw."""
    args = run_script("prolog.sh", tmp_path, SLURM_JOB_ID="1240",
                      SLURM_ARRAY_JOB_ID="1234", SLURM_ARRAY_TASK_ID="7")
    assert args[2:] == ["--begin", "1240"]


def test_prolog_reads_defaults_file_and_logs_without_syslog(tmp_path: Path):
    """No syslog: messages go to HPCPERF_PROLOG_LOG; bin and config from the defaults."""
    stub = tmp_path / "mon"
    stub.write_text('#!/bin/sh\necho "took $*" >&2\n')
    stub.chmod(0o755)
    defaults = tmp_path / "defaults"
    defaults.write_text(f"HPCPERF_MONITOR_BIN={stub}\nHPCPERF_MONITOR_CONFIG=/opt/m.conf\n"
                        f"HPCPERF_PROLOG_LOG={tmp_path / 'p.log'}\n")
    env = {"PATH": os.environ["PATH"], "HPCPERF_PROLOG_DEFAULTS": str(defaults),
           "SLURM_JOB_ID": "55"}
    assert subprocess.run(["sh", str(PACKAGING / "prolog.sh")], env=env, timeout=30
                          ).returncode == 0
    line = (tmp_path / "p.log").read_text()
    assert "prolog job 55: took --config /opt/m.conf --begin 55" in line


def test_epilog_and_no_job(tmp_path: Path):
    args = run_script("epilog.sh", tmp_path, SLURM_JOB_ID="1240",
                      SLURM_ARRAY_JOB_ID="1234", SLURM_ARRAY_TASK_ID="7")
    assert args[2:] == ["--end", "1240"]
    (tmp_path / "args").unlink()
    assert run_script("epilog.sh", tmp_path) == []  # outside a job: nothing, exit 0


def test_unit_reloads_with_sighup():
    unit = (PACKAGING / "hpcperf-monitor.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "ExecStart=/usr/bin/hpcperf-monitor --config /etc/hpcperfstats/monitor.conf" in unit
