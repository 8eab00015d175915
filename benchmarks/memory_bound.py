"""Peak memory of the ingest paths: one 50 MB line (issue 12), a host_data build (issue 17).

``python -m benchmarks.memory_bound [--mb 50] [--src DIR] [--cases drain,import,rebuild,host_data]
[--nodes 1000] [--hours 1] [--chunk BYTES]``. Each case runs
in a fresh child process and prints its peak RSS (``ru_maxrss``), with the
RSS of the same process after its imports alone for reference:

- ``drain``: ``store_messages`` of one message of a header, a sample and a
  50 MB line (the message cap at its default, 16 MiB);
- ``import``: ``import_archive`` of a file of a header, 200 samples and one
  50 MB line inside a sample;
- ``rebuild``: ``compute_window`` (host_data's parse and rates) of the hour
  of such a file lying unindexed in the archive (a damaged or pre-index file).

- ``host_data`` (issue 17): ``build_host_data`` of ``--hours`` hours of
  ``--nodes`` demo hosts (12 samples per host-hour; 100 drained hosts
  copied under new names), into a private PostgreSQL, at the default
  ``HPCPERF_CHUNK_MAX_BYTES`` (``--chunk`` to set another); reports peak
  RSS (the child's ``VmHWM``), and KB per sample above the RSS after imports.

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
import hpcperfstats.ingest.drain, hpcperfstats.ingest.importer, hpcperfstats.hostdata.load
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tmp = Path(tmp)
E = int(next((tmp / "archive" / "n1").iterdir()).name)
started = time.monotonic()
if case == "drain":  # the body in memory, as the broker client hands it over
    res = hpcperfstats.ingest.drain.store_messages([(tmp / "message").read_bytes()], tmp / "a",
                                            tmp / "q")
    out = f"quarantined {res.quarantined}"
elif case == "import":
    res = hpcperfstats.ingest.importer.import_archive(tmp / "old", tmp / "a", tmp / "q")
    out = f"{res.samples} samples, {res.issues} issues"
else:
    start, end = datetime.fromtimestamp(E, UTC), datetime.fromtimestamp(E + 3600, UTC)
    rows, samples, issues = hpcperfstats.hostdata.load.compute_window(tmp / "archive", start, end,
                                                                  3600)
    out = f"{rows.height} rows, {samples.height} samples, {issues} issues"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "peak_mb": round(peak / 1024), "after_imports_mb":
                  round(base / 1024), "seconds": round(time.monotonic() - started, 2),
                  "result": out}))
"""


CHILD_HOST_DATA = r"""
import json, sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
src, url, archive, hours = sys.argv[1:5]
if src:
    sys.path[:0] = [src, src + "/monitor"]
import psycopg
import hpcperfstats.hostdata.load
def hwm():  # this address space's peak (ru_maxrss would include the parent's before exec)
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
base = hwm()
start = datetime(2026, 11, 20, 12, tzinfo=UTC)
started = time.monotonic()
with psycopg.connect(url) as conn:
    conn.execute("TRUNCATE host_data")
    conn.commit()
    res = hpcperfstats.hostdata.load.build_host_data(conn, Path(archive), start,
                                                 start + timedelta(hours=int(hours)), 3600)
peak = hwm()
print(json.dumps({"case": "host_data", "peak_mb": round(peak / 1024),
                  "after_imports_mb": round(base / 1024), "samples": res.samples,
                  "kb_per_sample": round((peak - base) / res.samples, 1),
                  "pieces": getattr(res, "pieces", 1), "rows": res.rows,
                  "seconds": round(time.monotonic() - started, 1)}))
"""


def host_data_case(src: str, nodes: int, hours: int, chunk: int | None) -> dict:
    """Peak RSS of building ``hours`` of ``nodes`` demo hosts (see the module doc)."""
    import os
    from datetime import UTC, datetime

    import psycopg
    from hpcperf_demo.cluster import DemoConfig
    from hpcperf_demo.generate import clone_hosts, iter_messages

    from hpcperfstats.db import embedded
    from hpcperfstats.db.schema import ensure_schema
    from hpcperfstats.ingest.drain import store_messages

    base = min(nodes, 100)
    if nodes % base or nodes // base - 1 > 22:
        raise SystemExit("--nodes: up to 100, or a multiple of 100 up to 2300")
    with tempfile.TemporaryDirectory(prefix="hpcperf-membench-") as tmp:
        root = Path(tmp)
        cfg = DemoConfig(gpu_nodes=0, nodes=base, hours=hours,
                         start=datetime(2026, 11, 20, 12, tzinfo=UTC))
        store_messages((m.text.encode() for m in iter_messages(cfg)), root / "archive",
                       root / "q", root / "s")
        if nodes > base:
            clone_hosts(root / "archive", nodes // base - 1)
        env = {**os.environ, **({"HPCPERF_CHUNK_MAX_BYTES": str(chunk)} if chunk else {})}
        with embedded.running(root / "pgdata") as url:
            with psycopg.connect(url) as conn:
                ensure_schema(conn)
            proc = subprocess.run([sys.executable, "-c", CHILD_HOST_DATA, src, url,
                                   str(root / "archive"), str(hours)],
                                  capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode:
        return {"case": "host_data", "failed": proc.stderr.strip().splitlines()[-1:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "nodes": nodes, "hours": hours, "chunk": chunk or "default",
            "mb_per_host_hour": round(out["peak_mb"] / (nodes * hours), 3)}


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
    parser.add_argument("--cases", default="drain,import,rebuild,host_data")
    parser.add_argument("--nodes", type=int, default=1000, help="host_data: demo hosts")
    parser.add_argument("--hours", type=int, default=1, help="host_data: hours built")
    parser.add_argument("--chunk", type=int, default=None,
                        help="host_data: HPCPERF_CHUNK_MAX_BYTES (default: the default)")
    args = parser.parse_args()
    src = str(Path(args.src).resolve()) if args.src else ""
    for case in args.cases.split(","):
        result = (host_data_case(src, args.nodes, args.hours, args.chunk)
                  if case == "host_data" else run(case, src, args.mb))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
