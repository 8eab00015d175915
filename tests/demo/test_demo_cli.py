"""``hpcperf generate-demo``: raw files per host, rotated at midnight, and the dumps."""

from __future__ import annotations

from datetime import UTC, datetime

from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.cli import main
from hpcperfstats.jobs.accounting import parse_accounting
from hpcperfstats.jobs.scripts import read_scripts, scripts_path


def test_generate_demo_writes_raw_files_and_accounting(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["generate-demo", "--out", str(out), "--nodes", "3", "--hours", "2",
               "--interval", "600", "--start", "2026-11-20T23:00:00"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    # 3 CPU nodes and the GPU node x 12 samples, each in 2 day files
    assert "3 nodes + 1 GPU node x 12 samples" in printed
    assert "wrote 48 samples of 4 hosts in 8 raw files" in printed
    hosts = sorted(p.name for p in (out / "raw").iterdir())
    assert hosts == ["c001-001", "c001-002", "c001-003", "g001-001"]
    first = int(datetime(2026, 11, 20, 23, tzinfo=UTC).timestamp())
    midnight = int(datetime(2026, 11, 21, tzinfo=UTC).timestamp())
    for host in hosts:
        files = sorted((out / "raw" / host).iterdir())
        assert [int(f.name) for f in files] == [first, midnight]
        raws = [read_raw(f.read_text(), source=str(f)) for f in files]
        assert [r.issues for r in raws] == [[], []]
        assert [len(r.samples) for r in raws] == [6, 6]  # 23:00-23:50, 00:00-00:50
        assert [len(r.headers) for r in raws] == [1, 1]
        assert [s.seq for r in raws for s in r.samples] == list(range(1, 13))
    files = sorted(p.name for p in (out / "accounting").iterdir())
    # each day's dump and, beside it, its finished jobs' scripts
    assert files == ["2026-11-20.scripts.jsonl", "2026-11-20.txt",
                     "2026-11-21.scripts.jsonl", "2026-11-21.txt"]
    for day in files[1::2]:
        jobs, issues = parse_accounting((out / "accounting" / day).read_text(), day)
        assert issues == []
        scripts, problems = read_scripts(scripts_path(out / "accounting" / day).read_text())
        finished = jobs.filter(jobs["end_time"].is_not_null())["jobid"].to_list()
        assert problems == [] and sorted(scripts) == sorted(finished)
        assert all(s.startswith(b"#!/bin/bash\n#SBATCH --job-name=") for s in scripts.values())
