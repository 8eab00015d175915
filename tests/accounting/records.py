"""One plain sacct record to build test dumps from (shared by the accounting tests)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hpcperfstats.jobs.accounting import FIELDS

HEADER = "|".join(FIELDS)


def line(**over: str) -> str:
    """One record with plain defaults, fields overridden by sacct name."""
    rec = {
        "JobID": "500", "JobIDRaw": "500", "User": "u1", "Account": "A1",
        "Partition": "normal", "QOS": "normal", "JobName": "job", "State": "COMPLETED",
        "ExitCode": "0:0", "Submit": "2026-11-20T12:00:00+0000",
        "Start": "2026-11-20T12:10:00+0000", "End": "2026-11-20T13:10:00+0000",
        "Elapsed": "01:00:00", "Timelimit": "02:00:00", "NNodes": "1", "NCPUS": "16",
        "ReqMem": "64G", "AllocTRES": "billing=16,cpu=16,mem=64G,node=1", "NodeList": "c001-001",
    }  # fmt: skip
    rec.update(over)
    return "|".join(rec.get(f, "") for f in FIELDS)  # later fields (ReqCPUS, ...) empty


def install_fake_sacct(tmp_path: Path, monkeypatch, script: str) -> Path:
    """Put an executable ``sacct`` running ``script`` first on PATH (the dump
    collector calls sacct by name, as on a login node)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "sacct"
    exe.write_text(script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return exe
