"""Monitor overhead per sample: CPU seconds and peak RSS (a benchmark, not a test).

Targets: at most 0.1 CPU-s per sample on a 128-CPU node (TACC's C monitor
takes about 0.29 CPU-s on a 112-CPU node) and RSS under 30 MB. Two roots:
a generated 128-CPU tree (8 NUMA nodes, 200 user processes, 4 job cgroups,
IB, Lustre, RAPL, NFS from ``tests/fixtures/nodetree_hw``) and this machine
(``/``); the tree is measured again without ``procexe`` (application
detection: ``/proc/<pid>/stat`` and the ``exe`` link of each of the 200
processes) to give that type's share of the cost, in the same run. Each is
measured in a fresh interpreter that imports what the
daemon imports (pika included), as a node runs the monitor: N samples
framed to text, CPU time from ``process_time``, peak RSS from
``ru_maxrss``, also read right after the imports.

    .venv/bin/python -m benchmarks.monitor_overhead [--samples 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HW = REPO / "tests/fixtures/nodetree_hw"
TREE4 = REPO / "tests/fixtures/nodetree_4cpu"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import hpcperf_monitor.cli  # everything the daemon loads, pika included
from hpcperf_monitor.framing import Framer
from hpcperf_monitor.sampler import Sampler
imports_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
root, n, state = Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
from hpcperf_monitor.collectors import REGISTRY
types = [t for t in REGISTRY if t not in sys.argv[5].split(",")]
sampler, framer = Sampler(root, types=types, state_dir=state), Framer()
framer.frame(sampler.sample(seq=0))  # warm-up: imports, header
start = time.process_time()
size = 0
for seq in range(1, n + 1):
    size += len(framer.frame(sampler.sample(seq=seq)))
cpu = (time.process_time() - start) / n
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu_s": cpu, "rss_mb": rss_mb, "imports_mb": imports_mb, "bytes": size // n,
                  "types": list(sampler.header.schemas)}))
"""


def build_tree(dest: Path, cpus: int = 128, numa: int = 8, procs: int = 200) -> Path:
    shutil.copytree(HW, dest)
    for rel in ("proc/diskstats", "proc/loadavg", "proc/uptime", "proc/vmstat", "sys/class/net"):
        src = TREE4 / rel
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / rel)
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    lines += [f"cpu{i} {1000 + i} 2 {300 + i} 400000 5 6 7 8 0 0" for i in range(cpus)]
    lines += ["intr " + " ".join(["12345"] * 4000), "ctxt 987654321", "btime 1700000000",
              "processes 4242", "procs_running 3", "procs_blocked 0",
              "softirq " + " ".join(["1"] * 11)]
    (dest / "proc/stat").write_text("\n".join(lines) + "\n")
    node_src = TREE4 / "sys/devices/system/node/node0"
    for n in range(numa):
        shutil.copytree(node_src, dest / f"sys/devices/system/node/node{n}")
    status = (HW / "proc/4242/status").read_text()
    for pid in range(10000, 10000 + procs):
        (dest / f"proc/{pid}").mkdir()
        (dest / f"proc/{pid}/status").write_text(status.replace("4242", str(pid)))
        (dest / f"proc/{pid}/stat").write_text(
            f"{pid} (lmp_mpi) R 1 {pid} {pid} 0 -1 4194560 9 0 0 0 {pid * 7} {pid} 0 0 20 0 "
            "4 0 12345 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0\n")
        os.symlink(f"/opt/apps/lammps/2Aug2023/bin/lmp_mpi{pid % 3 or ''}",
                   dest / f"proc/{pid}/exe")
        if os.geteuid() == 0:  # root's processes are not reported: these are a user's
            os.chown(dest / f"proc/{pid}", 1000, 1000)
    return dest


def measure(root: Path, samples: int, without: str = "") -> dict:
    with tempfile.TemporaryDirectory() as state:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(REPO / "monitor"), str(root), str(samples), state,
             without],
            capture_output=True, text=True, check=True,
        )
    return json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--interval", type=float, default=300.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = build_tree(Path(tmp) / "node128")
        results = {"128-cpu tree": measure(tree, args.samples),
                   "tree, no procexe": measure(tree, args.samples, "procexe"),
                   "this machine": measure(Path("/"), args.samples)}
    for name, r in results.items():
        print(f"{name:16s} {r['cpu_s']:.4f} CPU-s/sample  peak RSS {r['rss_mb']:.1f} MB "
              f"({r['imports_mb']:.1f} MB after imports)  "
              f"{r['bytes']} B/message  CPU fraction at {args.interval:g}s: "
              f"{r['cpu_s'] / args.interval:.2e}  types {','.join(r['types'])}")
    full, without = results["128-cpu tree"], results["tree, no procexe"]
    print(f"procexe (200 processes): {full['cpu_s'] / without['cpu_s']:.2f}x the CPU of a "
          f"sample without it, {full['bytes'] - without['bytes']} B more per message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
