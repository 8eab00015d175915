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
src, case, tmp = sys.argv[1:4]
if src:
    sys.path[:0] = [src, src + "/monitor"]
from datetime import datetime, UTC
import hpcperfstats.drain, hpcperfstats.importer, hpcperfstats.host_load
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tmp = Path(tmp)
E = int(next((tmp / "archive" / "n1").iterdir()).name)
started = time.monotonic()
if case == "drain":  # the body in memory, as the broker client hands it over
    res = hpcperfstats.drain.store_messages([(tmp / "message").read_bytes()], tmp / "a",
                                            tmp / "q")
    out = f"quarantined {res.quarantined}"
elif case == "import":
    res = hpcperfstats.importer.import_archive(tmp / "old", tmp / "a", tmp / "q")
    out = f"{res.samples} samples, {res.issues} issues"
else:
    start, end = datetime.fromtimestamp(E, UTC), datetime.fromtimestamp(E + 3600, UTC)
    rows, samples, issues = hpcperfstats.host_load.compute_window(tmp / "archive", start, end,
                                                                  3600)
    out = f"{rows.height} rows, {samples.height} samples, {issues} issues"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "peak_mb": round(peak / 1024), "after_imports_mb":
                  round(base / 1024), "seconds": round(time.monotonic() - started, 2),
                  "result": out}))
"""


def sample(t: int, k: int) -> str:
    return f"{t} - n1\ncpu 0 {100 + k} {50 + k} {900 + k}\nmem 0 {2000 + k} 8000\n"


def write_giant(fh, mb: int) -> None:
    """One ``cpu 1 777...`` line of ``mb`` MiB, written 1 MiB at a time."""
    fh.write(b"cpu 1 ")
    for _ in range(mb):
        fh.write(b"7" * (1 << 20))
    fh.write(b"\n")


def prepare(tmp: Path, mb: int) -> None:
    """The inputs: a message, a file to import, the same file unindexed in an archive."""
    with open(tmp / "message", "wb") as fh:
        fh.write((HEAD + sample(E, 0)).encode())
        write_giant(fh, mb)
    for folder in ("old", "archive"):
        (tmp / folder / "n1").mkdir(parents=True)
        with open(tmp / folder / "n1" / str(E), "wb") as fh:
            fh.write(HEAD.encode())
            for k in range(200):
                fh.write(sample(E + 15 * k, k).encode())
                if k == 10:
                    write_giant(fh, mb)


def run(case: str, src: str, mb: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hpcperf-membench-") as tmp:
        prepare(Path(tmp), mb)
        proc = subprocess.run([sys.executable, "-c", CHILD, src, case, tmp],
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
