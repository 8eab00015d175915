"""Peak memory of the ingest paths fed one 50 MB single-line input (issue 12, item 9).

``python -m benchmarks.memory_bound [--mb 50] [--src DIR]``. Each case runs
in a fresh child process and prints its peak RSS (``ru_maxrss``), with the
RSS of the same process after its imports alone for reference:

- ``drain``: ``store_messages`` of one message of a header, a sample and a
  50 MB line (the message cap at its default, 16 MiB);
- ``import``: ``import_archive`` of a file of a header, 200 samples and one
  50 MB line inside a sample;
- ``rebuild``: ``compute_window`` (host_data's parse and rates) of the hour
  of such a file lying unindexed in the archive (a damaged or pre-index file).

``--src`` puts another checkout's code first on ``sys.path`` (for instance
the commit before issue 12, unpacked with ``git archive <commit> | tar -x
-C DIR``) so the same cases measure before and after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

E = 1795176000  # 2026-11-20 12:00 UTC
HEAD = ("$tacc_stats 2.3.5\n$hostname n1\n$uptime 5000\n"
        "!cpu user,E,U=cs system,E,U=cs idle,E,U=cs\n!mem MemUsed,U=KB MemTotal,U=KB\n")

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
src, case, tmp, mb = sys.argv[1:5]
if src:
    sys.path[:0] = [src, src + "/monitor"]
from datetime import datetime, UTC
import hpcperfstats.drain, hpcperfstats.importer, hpcperfstats.host_load
E, HEAD = %d, %r
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tmp = Path(tmp)
def sample(t, k):
    return f"{t} - n1\ncpu 0 {100 + k} {50 + k} {900 + k}\nmem 0 {2000 + k} 8000\n"
giant = "cpu 1 " + "7" * (int(mb) * 1024 * 1024) + "\n"
body = HEAD + "".join(sample(E + 15 * k, k) + (giant if k == 10 else "") for k in range(200))
started = time.monotonic()
if case == "drain":
    msg = (HEAD + sample(E, 0) + giant).encode()
    del body, giant
    res = hpcperfstats.drain.store_messages([msg], tmp / "a", tmp / "q", tmp / "s")
    out = f"quarantined {res.quarantined}"
elif case == "import":
    (tmp / "old" / "n1").mkdir(parents=True)
    (tmp / "old" / "n1" / str(E)).write_text(body)
    del body, giant
    res = hpcperfstats.importer.import_archive(tmp / "old", tmp / "a", tmp / "q", tmp / "s")
    out = f"{res.samples} samples, {res.issues} issues"
else:
    (tmp / "a" / "n1").mkdir(parents=True)
    (tmp / "a" / "n1" / str(E)).write_text(body)
    del body, giant
    start = datetime.fromtimestamp(E, UTC)
    end = datetime.fromtimestamp(E + 3600, UTC)
    rows, samples, issues = hpcperfstats.host_load.compute_window(tmp / "a", start, end, 3600)
    out = f"{rows.height} rows, {samples.height} samples, {issues} issues"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "peak_mb": round(peak / 1024), "after_imports_mb":
                  round(base / 1024), "seconds": round(time.monotonic() - started, 2),
                  "result": out}))
""" % (E, HEAD)


def run(case: str, src: str, mb: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hpcperf-membench-") as tmp:
        proc = subprocess.run([sys.executable, "-c", CHILD, src, case, tmp, str(mb)],
                              capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        return {"case": case, "failed": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=50, help="size of the single line (MiB)")
    parser.add_argument("--src", default="", help="checkout whose code to measure instead")
    parser.add_argument("--cases", default="drain,import,rebuild")
    args = parser.parse_args()
    for case in args.cases.split(","):
        print(json.dumps(run(case, str(Path(args.src).resolve()) if args.src else "", args.mb)),
              flush=True)


if __name__ == "__main__":
    main()
