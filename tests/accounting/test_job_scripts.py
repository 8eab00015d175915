"""Job scripts: ``sacct --batch-script`` parsing, the dump's scripts file, ``job_scripts``.

The fake ``sacct`` prints the day's dump (as in ``test_sacct_dump.py``) and, for
``--batch-script --jobs=<id>``, the stored answer of that job
(``tests/fixtures/accounting/batch-script/``, Slurm's ``_print_script`` layout).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from records import install_fake_sacct

from hpcperfstats.archive import quarantine
from hpcperfstats.jobs.accounting import FIELDS
from hpcperfstats.jobs.sacct_dump import batch_script_command, dump_day
from hpcperfstats.jobs.scripts import (
    RULE,
    BatchScript,
    check_script,
    format_scripts,
    load_job_scripts,
    parse_batch_script,
    read_scripts,
    scripts_path,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "accounting"
ANSWERS = FIXTURES / "batch-script"

FAKE_SACCT = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
if "--batch-script" in args:
    (jobs,) = [a for a in args if a.startswith("--jobs=")]
    path = os.path.join(os.environ["FAKE_SCRIPT_DIR"], jobs.split("=", 1)[1] + ".out")
    if os.path.exists(path):
        sys.stdout.buffer.write(open(path, "rb").read())
    sys.exit(0)
need = ["--allusers", "--allocations", "--parsable2", "--format={','.join(FIELDS)}"]
if any(a not in args for a in need):
    sys.exit("fake sacct: bad call")
day = [a for a in args if a.startswith("--starttime=")][0].split("=")[1][:10]
sys.stdout.write(open(os.path.join(os.environ["FAKE_SACCT_DIR"], day + ".txt")).read())
"""


@pytest.fixture
def fake_sacct(tmp_path, monkeypatch) -> Path:
    exe = install_fake_sacct(tmp_path, monkeypatch, FAKE_SACCT)
    monkeypatch.setenv("FAKE_SACCT_DIR", str(FIXTURES / "sacct"))
    monkeypatch.setenv("FAKE_SCRIPT_DIR", str(ANSWERS))
    return exe


def slurm_prints(jobid: str, script: bytes | None) -> bytes:
    """What Slurm's ``_print_script`` prints: ``"Batch Script for %s\\n<80 dashes>\\n%s\\n"``
    with the script, or ``NONE\\n`` without one."""
    return f"Batch Script for {jobid}\n{RULE}\n".encode() + (script or b"NONE\n") + b"\n"


def test_parses_sacct_batch_script_answers():
    got = parse_batch_script((ANSWERS / "3021.out").read_bytes())
    assert got.jobid == "3021"
    assert got.script.startswith(b"#!/bin/bash\n#SBATCH --job-name=crash\n")
    assert got.script.endswith(b"srun gmx_mpi mdrun -deffnm md\n")  # sacct's own \n dropped
    assert parse_batch_script((ANSWERS / "3001_4.out").read_bytes()).jobid == "3001_4"
    wrapped = parse_batch_script((ANSWERS / "3022.out").read_bytes())
    assert wrapped.script == (b"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n"
                              b"sleep 3600\n")
    assert parse_batch_script((ANSWERS / "3023.out").read_bytes()) == BatchScript("3023", None)
    # a fake header and rule inside a script are part of it (one job per answer)
    hostile = parse_batch_script((ANSWERS / "3024.out").read_bytes())
    assert hostile.jobid == "3024"
    assert b"\nBatch Script for 3025\n" + RULE.encode() in hostile.script


def test_parses_answers_captured_from_slurm_22_05():
    """``sacct --batch-script --jobs=N`` of a real Slurm 22.05.8 (``record-slurm-run``)."""
    real = ANSWERS / "real-slurm-22.05"
    busy = parse_batch_script((real / "1.out").read_bytes())
    assert busy == BatchScript("1", b'#!/bin/sh\n# This script was created by sbatch --wrap.'
                                    b'\n\ntimeout "$DUR" sh -c "while :; do :; done" || true\n')
    idle = parse_batch_script((real / "2.out").read_bytes())
    assert idle.jobid == "2" and idle.script.endswith(b"\n\nsleep 30\n")


@pytest.mark.parametrize("out", [
    b"", b"sacct: error: Problem talking to the database\n",
    b"Batch Script for 12\n#!/bin/bash\n",  # no rule
    b"Batch Script for 12\n" + b"-" * 79 + b"\nx\n\n",
    b"Batch Script for 12\n" + RULE.encode() + b"\nexit 0",  # cut short
    b"Batch Script for \n" + RULE.encode() + b"\nx\n\n",
])  # fmt: skip
def test_anything_else_is_an_error(out):
    with pytest.raises(ValueError):
        parse_batch_script(out)


@given(jobid=st.from_regex(r"[0-9]{1,9}(_[0-9]{1,5}|\+[0-9])?", fullmatch=True),
       script=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_property_parse_inverts_slurms_layout_and_the_file_keeps_bytes(jobid, script):
    """Any script bytes (NUL, invalid UTF-8, fake headers, no final newline) come back
    exactly from what Slurm prints, and through the scripts file; only a script that
    is exactly ``NONE\\n`` reads as none (Slurm prints the same for both)."""
    got = parse_batch_script(slurm_prints(jobid, script))
    expected = None if script in (b"", b"NONE\n") else script
    assert got == BatchScript(jobid, expected)
    back, problems = read_scripts(format_scripts({jobid: script}))
    assert back == {jobid: script} and problems == []


def test_check_script_sets_aside_nul_and_bad_utf8_and_cuts_long_ones():
    assert check_script("1", b"#!/bin/sh\nls\n", 100).script == "#!/bin/sh\nls\n"
    nul = check_script("1", b"ab\x00c", 100)
    assert (nul.script, nul.problem) == (None, "contains NUL bytes (first at byte 2)")
    bad = check_script("1", b"ab\xffc", 100)
    assert bad.script is None and bad.problem.startswith("not UTF-8 (byte 2")
    # 'é' is 2 bytes: a cut at 4 bytes of "aéé" (5 bytes) keeps "aé" (3), not half an é
    cut = check_script("1", "aéé".encode(), 4)
    assert (cut.script, cut.size_bytes, cut.truncated) == ("aé", 5, True)


def test_dump_with_scripts_writes_them_beside_the_dump(fake_sacct, tmp_path, capsys):
    assert batch_script_command("3021") == ["sacct", "--batch-script", "--jobs=3021"]
    path, jobs, _ = dump_day(date(2026, 3, 19), tmp_path, scripts=True)
    side = scripts_path(path)
    assert side.name == "2026-03-19.scripts.jsonl"
    # written first: never older than the dump the pipeline is told about
    assert side.stat().st_mtime_ns <= path.stat().st_mtime_ns
    scripts, problems = read_scripts(side.read_text())
    assert problems == []
    # the finished jobs with a script; 3023 has none, 3010+1's answer named job 3011
    assert sorted(scripts) == ["3001_4", "3010+0", "3021", "3022", "3024", "3025"]
    assert scripts["3025"] == b'#!/bin/bash\necho "\x00binary"\n'  # bytes as submitted
    assert scripts["3010+0"].startswith(b"#!/bin/bash\necho \xff\xfe")
    err = capsys.readouterr().err
    assert "job 3010+1: sacct answered with job '3011'" in err
    assert "job 3020" not in err  # running at dump time: not asked
    # without --scripts nothing beside the dump
    other = tmp_path / "plain"
    dump_day(date(2026, 3, 19), other)
    assert not scripts_path(other / "2026-03-19.txt").exists()


def test_load_stores_clean_scripts_and_quarantines_the_rest(fake_sacct, tmp_path, pg_url):
    path, _, _ = dump_day(date(2026, 3, 19), tmp_path / "acct", scripts=True)
    side = scripts_path(path)
    with side.open("a") as f:  # a line that is no record: set aside, the rest loads
        f.write('{"jobid": 7}\n')
    qdir = tmp_path / "quarantine"
    with psycopg.connect(pg_url) as conn:
        counts = load_job_scripts(conn, side, date(2026, 3, 19), "demo", qdir, max_bytes=251)
        assert counts == {"stored": 4, "truncated": 1, "set_aside": 2, "bad_lines": 1}
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT jobid, script, size_bytes, truncated, problem FROM job_scripts"
            " WHERE cluster = 'demo'")}
    assert set(rows) == {"3001_4", "3010+0", "3021", "3022", "3024", "3025"}
    wrapped = (ANSWERS / "3022.out").read_bytes()
    assert rows["3022"] == (parse_batch_script(wrapped).script.decode(), 66, False, None)
    # 254 bytes ending "café ✓\n" (✓: bytes 250-252): a cut at 251 keeps 250, whole characters
    script, size, truncated, problem = rows["3024"]
    assert (size, truncated, problem, len(script.encode())) == (254, True, None, 250)
    assert script.endswith("caf\u00e9 ") and script.startswith("#!/bin/bash\n")
    assert rows["3025"] == (None, 27, False, "contains NUL bytes (first at byte 18)")
    assert rows["3010+0"][0] is None and rows["3010+0"][3].startswith("not UTF-8 (byte 17")
    records = quarantine.list_records(qdir)
    reasons = sorted(r["reason"] for r in records)
    assert len(reasons) == 3
    assert reasons[0].startswith("job script of job 3010+0: not UTF-8")
    assert reasons[1] == "job script of job 3025: contains NUL bytes (first at byte 18)"
    assert reasons[2].startswith("job scripts file: not a job script record")
    nul = next(r for r in records if "3025" in r["reason"])
    assert Path(nul["path"]).read_bytes() == b'#!/bin/bash\necho "\x00binary"\n'


def test_reload_is_idempotent_and_a_newer_day_wins(tmp_path, pg_url):
    folder = tmp_path / "acct"
    folder.mkdir()
    first, second = folder / "2026-03-19.scripts.jsonl", folder / "2026-03-20.scripts.jsonl"
    first.write_text(format_scripts({"3020": b"#!/bin/sh\nold\n", "3021": b"#!/bin/sh\na\n"}))
    second.write_text(format_scripts({"3020": b"#!/bin/sh\nnew\n"}))
    with psycopg.connect(pg_url) as conn:
        def scripts():
            return dict(conn.execute("SELECT jobid, script FROM job_scripts"
                                     " WHERE cluster = 'demo' ORDER BY 1").fetchall())
        load_job_scripts(conn, second, date(2026, 3, 20), "demo", tmp_path / "q")
        load_job_scripts(conn, first, date(2026, 3, 19), "demo", tmp_path / "q")
        load_job_scripts(conn, first, date(2026, 3, 19), "demo", tmp_path / "q")
        assert scripts() == {"3020": "#!/bin/sh\nnew\n", "3021": "#!/bin/sh\na\n"}
        # no scripts file beside a dump: nothing changes
        none = load_job_scripts(conn, folder / "2026-03-21.scripts.jsonl", date(2026, 3, 21),
                                "demo", tmp_path / "q")
        assert none["stored"] == 0 and len(scripts()) == 2


def test_scripts_file_is_one_json_object_per_line():
    text = format_scripts({"1": b"a\nb\xff\x00"})
    assert text.count("\n") == 1
    assert json.loads(text) == {"jobid": "1", "script": "a\nb\udcff\x00"}
