"""The ``procexe`` type: executable paths (percent-encoded devices) and CPU time per process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.collectors import REGISTRY, procexe
from hpcperf_monitor.rawformat import (
    Header,
    RawStats,
    Sample,
    decode_device,
    encode_device,
    parse_procexe_device,
    procexe_device,
    read_raw,
    write_raw,
)
from hypothesis import example, given
from hypothesis import strategies as st

# bytes a path may hold: blanks, NUL (not in a real path, but the encoding must
# not care), "%", "/", control characters and bytes that are not UTF-8
PATH_BYTES = st.binary(max_size=64) | st.lists(
    st.sampled_from([b" ", b"\t", b"\x00", b"%", b"/", b"\n", b"\r", b"\xff", b"\xc3\xa9",
                     b"%41", b"a", b"\x7f", b"\x0c"]), max_size=12).map(b"".join)


@given(path=PATH_BYTES, pid=st.integers(1, 4_194_304))
@example(path=b"/opt/my app/bin/run 100% (deleted)", pid=42)
@example(path=b"/scratch/\xe9t\xe9/a.out\x00", pid=1)
@example(path=b"", pid=7)
def test_a_percent_encoded_path_survives_the_raw_format(path, pid):
    token = encode_device(path)
    assert token.isascii() and token.isprintable() and " " not in token
    assert decode_device(token) == path
    device = procexe_device(pid, path)
    header = Header(properties={"hostname": "c1"}, schemas={"procexe": schemas.PROCEXE})
    sample = Sample(time=1773900000.0, jobid="42", host="c1", header=header,
                    rows={"procexe": {device: (12, 3)}})
    raw = read_raw(write_raw(RawStats(headers=[header], samples=[sample])))
    assert raw.issues == []
    (read_device,) = raw.samples[0].rows["procexe"]
    assert raw.samples[0].rows["procexe"][read_device] == (12, 3)
    assert parse_procexe_device(read_device) == (pid, path)


@pytest.mark.parametrize("token", ["%4", "%zz", "a b", "é", "%"])
def test_a_token_the_encoder_cannot_have_written_is_refused(token):
    with pytest.raises(ValueError):
        decode_device(token)


def test_stat_fields_are_counted_from_the_last_parenthesis():
    # a command name with blanks and parentheses (field 2), flags 4194560, utime 1500, stime 25
    text = ("4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 380 0 0 0 1500 25 0 0 20 0 1 0 "
            "123456 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0")
    assert procexe.parse_stat(text) == (4194560, 1500, 25)
    assert procexe.parse_stat("4242 (cut") is None
    assert procexe.centiseconds(1500, hz=100) == 1500
    assert procexe.centiseconds(1500, hz=1000) == 150


def _fake_process(proc: Path, pid: int, exe: str, utime: int, flags: int = 0) -> None:
    d = proc / str(pid)
    d.mkdir(parents=True)
    (d / "stat").write_text(f"{pid} (x) S 1 1 1 0 -1 {flags} 0 0 0 0 {utime} 5 0 0 20 0 1 0 9\n")
    os.symlink(exe, d / "exe")
    if os.geteuid() == 0:  # root's processes are skipped: make these a user's
        os.chown(d, 1000, 1000)


def test_kernel_threads_are_skipped_and_only_the_busiest_are_kept(tmp_path):
    proc = tmp_path / "proc"
    _fake_process(proc, 2, "/nonexistent/kthreadd", 10_000, flags=procexe.PF_KTHREAD)
    for pid, cpu in ((100, 50), (101, 70_000), (102, 900)):
        _fake_process(proc, pid, f"/apps/bin/code {pid}", cpu)
    rows = procexe.collect(tmp_path, limit=2)
    assert rows == {"101//apps/bin/code%20101": (70_000, 5), "102//apps/bin/code%20102": (900, 5)}


def test_procexe_is_unavailable_in_a_tree_without_stat_files(tree4):
    with pytest.raises(procexe.CollectorUnavailable):
        procexe.collect(tree4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_live_exe_and_cpu_time_of_a_process_this_test_starts():
    """A busy shell started here: its row carries its real executable and CPU time.

    Root's processes are skipped (as ``proc`` skips them), so a test running as
    root starts its child as ``nobody``.
    """
    user = 65534 if os.geteuid() == 0 else None
    shell = os.path.realpath("/bin/sh")  # what /proc/<pid>/exe shows: the link resolved
    child = subprocess.Popen(
        ["/bin/sh", "-c", "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done; sleep 60"],
        user=user)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until it has burned its 0.3 s (a loaded machine)
            stat = Path(f"/proc/{child.pid}/stat").read_text()
            if sum(procexe.parse_stat(stat)[1:]) >= 30 * procexe._TICKS // 100:
                break
            time.sleep(0.1)
        rows = REGISTRY["procexe"](Path("/"))
        mine = {parse_procexe_device(d)[1]: v for d, v in rows.items()
                if parse_procexe_device(d)[0] == child.pid}
        (path, (utime, stime)), = mine.items()
        assert path == os.fsencode(shell)
        assert utime + stime >= 30  # it had burned 0.3 s of CPU (centiseconds)
    finally:
        child.kill()
        child.wait()
