"""``hpcperf-monitor`` as a node runs it, printing instead of publishing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import hpcperf_monitor
from hpcperf_monitor.cli import next_tick
from hpcperf_monitor.rawformat import read_raw


def test_once_stdout_on_this_node(tmp_path: Path, run_monitor):
    state = tmp_path / "state"
    first = run_monitor("--once", "--stdout", "--state-dir", str(state))
    assert first.returncode == 0, first.stderr
    raw = read_raw(first.stdout, source="live")
    assert raw.issues == []
    assert len(raw.headers) == 1 and len(raw.samples) == 1
    sample = raw.samples[0]
    assert sample.jobid == "-"
    assert len(sample.rows["cpu"]) == os.cpu_count()
    assert sample.seq == 1
    assert abs(sample.time - time.time()) < 60
    second = run_monitor("--once", "--stdout", "--state-dir", str(state))
    again = read_raw(second.stdout)
    assert again.issues == [] and again.samples[0].seq == 2
    assert again.headers, "every new process starts with a header"


def test_begin_and_end_marks_and_current_job(tree4: Path, tmp_path: Path, run_monitor):
    common = ["--stdout", "--root", str(tree4), "--state-dir", str(tmp_path),
              "--collectors", "cpu,ps"]
    begin = read_raw(run_monitor("--begin", "812", *common).stdout).samples[0]
    during = read_raw(run_monitor("--once", *common).stdout).samples[0]
    end = read_raw(run_monitor("--end", "812", *common).stdout).samples[0]
    after = read_raw(run_monitor("--once", *common).stdout).samples[0]
    assert (begin.jobid, begin.mark_values("begin"), begin.seq) == ("812", ["812"], 1)
    assert (during.jobid, during.seq) == ("812", 2)  # the daemon-side sample knows the job
    assert (end.jobid, end.mark_values("end"), end.seq) == ("812", ["812"], 3)
    assert (after.jobid, after.seq) == ("-", 4)
    assert list(begin.rows) == ["cpu", "ps"]
    assert begin.host == "c401-004.test.example"
    assert (tmp_path / "c401-004.test.example" / "seq").read_text() == "4\n"


def test_bad_arguments_exit_2(run_monitor, tmp_path: Path):
    result = run_monitor("--once", "--stdout", "--collectors", "cpu,gpu",
                         "--state-dir", str(tmp_path))
    assert result.returncode == 2 and "unknown collector(s) gpu" in result.stderr
    result = run_monitor("--begin", "1", "--end", "1", "--state-dir", str(tmp_path))
    assert result.returncode == 2


def test_next_tick_aligns_to_wall_clock():
    assert next_tick(1000.0, 300) == 1200.0
    assert next_tick(1199.9, 300) == 1200.0
    assert next_tick(1200.0, 300) == 1500.0


def test_daemon_aligns_and_stops_on_sigterm(tree4: Path, tmp_path: Path, start_monitor):
    proc = start_monitor("--stdout", "--interval", "1", "--root", str(tree4),
                         "--state-dir", str(tmp_path), "--collectors", "ps")
    lines: list[str] = []  # read as it comes: a loaded machine starts the monitor late
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + 60
    while len(read_raw("".join(lines)).samples) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    reader.join(timeout=10)
    err = proc.stderr.read()
    proc.wait(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, err
    assert "stopping on signal 15" in err
    raw = read_raw(out)
    assert raw.issues == [] and len(raw.headers) == 1  # one process, one header
    assert len(raw.samples) >= 3
    assert [s.seq for s in raw.samples] == list(range(1, len(raw.samples) + 1))
    for sample in raw.samples[1:]:  # the first is taken at start, the rest on the second
        assert sample.time % 1 < 0.3, sample.time


def test_monitor_needs_only_stdlib_and_pika(tmp_path: Path):
    """Compute nodes get no polars, no dagster and no server package."""
    code = (
        "import sys, hpcperf_monitor.cli, hpcperf_monitor.record\n"
        "bad = {m.split('.')[0] for m in sys.modules} & {'polars', 'dagster', 'hpcperfstats'}\n"
        "sys.exit(('imported: ' + ' '.join(sorted(bad))) if bad else 0)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(hpcperf_monitor.__file__).parent.parent))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
