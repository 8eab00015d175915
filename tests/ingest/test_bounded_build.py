"""Issue 17 item 1: a host_data build's peak memory is bounded by the chunk setting.

The range: 600 demo hosts x 2 hours (14,400 samples, 33 MB of raw text, made
fast by copying 100 drained hosts under new names). Held at once, as a
build without chunking holds it, its data takes more than 5x the 256 MB
limit; built with ``HPCPERF_CHUNK_MAX_BYTES`` at 512 KiB (pieces of hosts
and hours, streamed to COPY) the same range stays under the limit. Each
build runs in a child process whose peak RSS the kernel reports (``VmHWM``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import clone_hosts, iter_messages

from hpcperfstats.ingest.drain import store_messages

from .conftest import START

LIMIT_MB = 256
CHUNK = 512 * 1024
HOURS = 2

CHILD = r"""
import json, sys
from datetime import datetime, timedelta, UTC
from pathlib import Path
import psycopg
from hpcperfstats.db.load import replace_host_data
from hpcperfstats.hostdata.load import build_host_data, compute_window
url, archive, start, hours, how = sys.argv[1:6]
start = datetime.fromisoformat(start)
end = start + timedelta(hours=int(hours))
if how == "chunked":
    with psycopg.connect(url) as conn:
        res = build_host_data(conn, Path(archive), start, end, 3600)
    out = {"rows": res.rows, "samples": res.samples, "pieces": res.pieces}
elif how == "fast":  # the whole range at once on today's wide parse (compute_window)
    rows, samples, _ = compute_window(Path(archive), start, end, 3600)
    out = {"rows": rows.height, "samples": samples.height, "pieces": 1}
else:  # the whole range at once on the long frame, as host_data was built before issue 17
    from hpcperfstats.archive.store import read_chunks
    from hpcperfstats.hostdata.rates import host_rows
    from hpcperfstats.hostdata.textframe import long_frame_of_chunks
    t0, t1 = start.timestamp(), end.timestamp()
    parsed = long_frame_of_chunks(list(read_chunks(Path(archive), t0, t1, 3600)))
    rows = host_rows(parsed.frame, t0, t1)
    out = {"rows": rows.height, "samples": parsed.samples_in.filter(
        (parsed.samples_in["time"] >= t0) & (parsed.samples_in["time"] < t1)).height,
        "pieces": 1}
# the kernel's peak RSS of this program's own address space (VmHWM, in kB)
status = Path("/proc/self/status").read_text()
out["peak_kb"] = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps(out))
"""


def run_child(pg_url: str, archive: Path, how: str, env: dict[str, str]) -> tuple[dict, float]:
    """The child's output and its peak RSS in MB.

    The peak is the child's ``VmHWM``, not ``ru_maxrss``: a child spawned
    (vfork + exec) from a big pytest process inherits the parent's peak in
    ``ru_maxrss`` (Linux keeps it across exec), which measured pytest, not
    the build.
    """
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, pg_url, str(archive), START.isoformat(), str(HOURS), how],
        capture_output=True, text=True, timeout=900, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    return out, out["peak_kb"] / 1024


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bounded")
    cfg = DemoConfig(gpu_nodes=0, nodes=100, hours=HOURS, start=START)
    store_messages((m.text.encode() for m in iter_messages(cfg)), root / "archive",
                   root / "quarantine")
    clone_hosts(root / "archive", 5)
    return root / "archive"


@pytest.mark.integration
def test_a_build_stays_under_the_limit_that_the_range_exceeds_five_times(big_archive, pg_url):
    whole, whole_mb = run_child(pg_url, big_archive, "whole", {})
    fast, fast_mb = run_child(pg_url, big_archive, "fast", {})
    chunked, chunked_mb = run_child(pg_url, big_archive, "chunked",
                                    {"HPCPERF_CHUNK_MAX_BYTES": str(CHUNK)})
    print(f"peak RSS: whole range {whole_mb:.0f} MB (wide parse {fast_mb:.0f} MB), "
          f"chunked {chunked_mb:.0f} MB "
          f"({chunked['pieces']} pieces), limit {LIMIT_MB} MB")
    assert whole["samples"] == chunked["samples"] == 600 * 12 * HOURS
    assert whole["rows"] == chunked["rows"] > 0  # the same rows, all loaded
    assert chunked["pieces"] > 2 * HOURS  # cut by hosts as well as by hours
    assert whole_mb > 5 * LIMIT_MB, whole_mb
    # the leaner wide parse, unchunked, still exceeds the limit: chunking is what bounds it
    assert fast["rows"] == whole["rows"] and fast_mb > LIMIT_MB, fast_mb
    assert chunked_mb < LIMIT_MB, chunked_mb
