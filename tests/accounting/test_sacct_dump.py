"""``hpcperf-sacct-dump`` against a fake ``sacct`` on PATH that replays fixtures.

No real Slurm runs in CI here: the fake checks the arguments the dump passes
(every field of FIELDS, parsable2, allocations only, the UTC day window) and
prints the stored dump of the requested day, or fails like sacct does when
slurmdbd is down.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from records import install_fake_sacct

from hpcperfstats.jobs.accounting import FIELDS, parse_accounting
from hpcperfstats.jobs.sacct_dump import dump_day, main, sacct_command

SACCT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "accounting" / "sacct"

FAKE_SACCT = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
need = ["--allusers", "--allocations", "--parsable2", "--format={','.join(FIELDS)}"]
missing = [a for a in need if a not in args]
if missing or os.environ.get("SLURM_TIME_FORMAT") != "%Y-%m-%dT%H:%M:%S%z":
    sys.exit(f"fake sacct: bad call {{args}} missing {{missing}}")
if os.environ.get("FAKE_SACCT_FAIL"):
    sys.stderr.write("sacct: error: Problem talking to the database: Connection refused\\n")
    sys.exit(1)
day = [a for a in args if a.startswith("--starttime=")][0].split("=")[1][:10]
end = [a for a in args if a.startswith("--endtime=")][0]
sys.stdout.write(open(os.path.join(os.environ["FAKE_SACCT_DIR"], day + ".txt")).read())
"""


@pytest.fixture
def fake_sacct(tmp_path, monkeypatch) -> Path:
    exe = install_fake_sacct(tmp_path, monkeypatch, FAKE_SACCT)
    monkeypatch.setenv("FAKE_SACCT_DIR", str(SACCT_DIR))
    return exe


def test_command_asks_for_one_utc_day_with_every_field():
    cmd = sacct_command(date(2026, 3, 19))
    assert cmd[0] == "sacct"
    assert f"--format={','.join(FIELDS)}" in cmd
    assert "--starttime=2026-03-19T00:00:00" in cmd and "--endtime=2026-03-20T00:00:00" in cmd


def test_dump_writes_the_day_file_byte_for_byte(fake_sacct, tmp_path):
    out = tmp_path / "accounting"
    path, jobs, bad = dump_day(date(2026, 3, 19), out)
    assert path == out / "2026-03-19.txt"
    assert path.read_bytes() == (SACCT_DIR / "2026-03-19.txt").read_bytes()
    assert (jobs, bad) == (12, 1)  # 13 job lines, one truncated
    assert sorted(p.name for p in out.iterdir()) == ["2026-03-19.txt"]  # no temp left


def test_rerun_replaces_atomically_and_failure_keeps_old_dump(fake_sacct, tmp_path,
                                                              monkeypatch):
    out = tmp_path / "accounting"
    out.mkdir()
    (out / "2026-03-20.txt").write_text("stale\n")
    old_inode = (out / "2026-03-20.txt").stat().st_ino
    assert main(["--day", "2026-03-20", "--dir", str(out)]) == 0
    path = out / "2026-03-20.txt"
    assert path.read_text() == (SACCT_DIR / "2026-03-20.txt").read_text()
    assert path.stat().st_ino != old_inode  # renamed over, never rewritten in place
    monkeypatch.setenv("FAKE_SACCT_FAIL", "1")
    assert main(["--day", "2026-03-20", "--dir", str(out)]) == 1
    assert path.read_text() == (SACCT_DIR / "2026-03-20.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["2026-03-20.txt"]


def test_console_script_runs(fake_sacct, tmp_path):
    script = Path(sys.executable).parent / "hpcperf-sacct-dump"
    out = subprocess.run([str(script), "--day", "2026-03-19", "--days", "2",
                          "--dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert "2026-03-19.txt: 12 jobs, 1 malformed lines" in out.stdout
    assert (tmp_path / "2026-03-20.txt").exists()


def test_fixture_parses_every_state_and_id_form():
    jobs, issues = parse_accounting((SACCT_DIR / "2026-03-19.txt").read_text(), "d19")
    assert [(i.line, i.reason) for i in issues] == [(13, "expected 19 fields, got 11; set aside")]
    by_id = {r["jobid"]: r for r in jobs.iter_rows(named=True)}
    assert {by_id[j]["state"] for j in by_id} == {
        "COMPLETED", "RUNNING", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY",
        "NODE_FAIL", "PREEMPTED"}
    assert by_id["3001_4"]["jobid_raw"] == "3005"
    assert by_id["3010+1"]["ngpus"] == 2 and by_id["3010+0"]["hosts"] == ["c001-002",
                                                                          "c001-003"]
    tz = by_id["3027"]
    assert tz["start_time"].isoformat() == "2026-03-19T12:00:00+00:00"  # 07:00 -05:00
    assert tz["hosts"] == ["c001-012"]
    assert by_id["3020"]["end_time"] is None


def test_real_slurm_capture_replays_and_parses(fake_sacct, tmp_path, monkeypatch):
    real = SACCT_DIR / "real-slurm-22.05"
    monkeypatch.setenv("FAKE_SACCT_DIR", str(real))
    path, jobs, bad = dump_day(date(2026, 11, 25), tmp_path)
    assert (jobs, bad) == (9, 0)
    frame, _ = parse_accounting(path.read_text(), str(path))
    by_id = {r["jobid"]: r for r in frame.iter_rows(named=True)}
    assert by_id["2"]["state"] == "FAILED" and by_id["2"]["exit_code"] == "3:0"
    assert by_id["7"]["state"] == "TIMEOUT" and by_id["7"]["timelimit_s"] == 60
    assert by_id["3_1"]["jobid_raw"] == "8"
    het = by_id["4+1"]
    assert (het["state"], het["start_time"], het["hosts"]) == ("CANCELLED", None, [])
    assert by_id["9"]["state"] == "RUNNING" and by_id["9"]["end_time"] is None
    # printed without an offset (TZ=UTC): read as UTC
    assert by_id["1"]["start_time"].isoformat() == "2026-11-25T20:17:51+00:00"
    assert by_id["1"]["hosts"] == ["vm"] and by_id["1"]["timelimit_s"] is None


def test_day_today_and_yesterday_are_utc_days():
    from datetime import UTC, datetime, timedelta

    from hpcperfstats.jobs.sacct_dump import day_arg

    today = datetime.now(UTC).date()
    assert day_arg("today") == today and day_arg("yesterday") == today - timedelta(days=1)
    assert day_arg("2026-11-28").isoformat() == "2026-11-28"


def test_item5_output_naming_a_column_twice_is_no_dump(fake_sacct, tmp_path, monkeypatch):
    """A blank line, then a header naming NCPUS twice: refused, no day file written."""
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "2026-03-21.txt").write_text("\n" + "|".join([*FIELDS, "NCPUS"]) + "\n")
    monkeypatch.setenv("FAKE_SACCT_DIR", str(folder))
    out = tmp_path / "accounting"
    with pytest.raises(RuntimeError, match=r"\['NCPUS'\] more than once"):
        dump_day(date(2026, 3, 21), out)
    assert not (out / "2026-03-21.txt").exists()
