"""Queue -> archive: messages/s of ``drain_queue`` against RabbitMQ's own pace.

``python -m benchmarks.drain [--nodes 1000] [--hours 24 | --minutes 10]``
(``--nodes 10000 --minutes 10``: a batch touches a file per message, the
case the side-by-side fsyncs of a batch are for). On a private
RabbitMQ node, the day's messages of ``DemoConfig(nodes, hours)`` are
published with confirms (baseline 1: the publish rate), drained into a
temporary archive (validate, append, index, fsync, then ack in batches), then
published again and consumed with a bare batched ack that stores nothing
(baseline 2). Ratios are against these baselines from the same run.

``--rounds`` drains the messages round by round instead: round 0 is every
host's first message (each opens its host's file, as every host's first
message after 00:00 UTC does), the later rounds append; each round is
published, then drained, and its drain rate printed. With ``--src DIR`` the
same rounds are drained first by another checkout's code (``DIR`` first on
``sys.path``, e.g. ``git archive <commit> | tar -x -C DIR``), then by this
one, on the same RabbitMQ node: before and after in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika
from hpcperf_demo import rabbitmq
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.ingest.drain import drain_queue
from hpcperfstats.ingest.publish import publish_messages
from hpcperfstats.ports import free_port

QUEUE = "bench"


def publish(url: str, bodies: list[bytes]) -> float:
    """Seconds to publish ``bodies`` with confirms (connection setup included)."""
    t0 = time.perf_counter()
    publish_messages(url, QUEUE, bodies)
    return time.perf_counter() - t0


def bare_consume(url: str, expected: int, batch: int = 500) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=batch * 2)
    n, t0 = 0, time.perf_counter()
    for method, _props, _body in ch.consume(QUEUE, inactivity_timeout=1.0):
        if method is None:
            break
        n += 1
        if n % batch == 0 or n == expected:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if n == expected:
            break
    seconds = time.perf_counter() - t0
    ch.cancel()
    conn.close()
    return seconds


#: one checkout's drain over the rounds (a child, so ``src`` can come first)
ROUNDS_CHILD = """
import json, pickle, sys, time
from pathlib import Path
src, url, rounds_file, work = sys.argv[1:5]
if src:
    sys.path[:0] = [src, src + "/monitor"]
from hpcperfstats.ingest.drain import drain_queue
from hpcperfstats.ingest.publish import publish_messages
rounds = pickle.loads(Path(rounds_file).read_bytes())
for k, bodies in enumerate(rounds):
    publish_messages(url, "bench", bodies)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = drain_queue(url, "bench", Path(work) / "archive", Path(work) / "quarantine",
                      max_messages=len(bodies), max_seconds=3600)
    print(json.dumps({"round": k, "messages": res.messages, "quarantined": res.quarantined,
                      "seconds": time.perf_counter() - t0,
                      "cpu": time.process_time() - cpu0}), flush=True)
"""


def host_rounds(bodies: list[bytes]) -> list[list[bytes]]:
    """Round r: each host's r-th message, in the original order."""
    seen: dict[bytes, int] = {}
    rounds: list[list[bytes]] = []
    for body in bodies:
        host = next(line.split()[2] for line in body.split(b"\n") if line[:1].isdigit())
        k = seen.get(host, 0)
        seen[host] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(body)
    return rounds


def rounds_main(url: str, bodies: list[bytes], src: str, tmp: Path) -> None:
    """Drain rate per round, for ``src``'s code (if given) then this tree's."""
    rounds = host_rounds(bodies)
    rounds_file = tmp / "rounds.pickle"
    rounds_file.write_bytes(pickle.dumps(rounds))
    here = str(Path(__file__).resolve().parents[1])
    results = {}
    for label, tree in ([("before", src)] if src else []) + [("after", "")]:
        work = tmp / label
        out = subprocess.run([sys.executable, "-c", ROUNDS_CHILD, tree, url, str(rounds_file),
                              str(work)], capture_output=True, text=True, cwd=here)
        if out.returncode != 0:
            raise SystemExit(f"{label}: {out.stderr[-3000:]}")
        results[label] = [json.loads(line) for line in out.stdout.splitlines()]
        assert all(r["quarantined"] == 0 for r in results[label]), results[label]
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(bodies)} messages of {len(rounds[0])} hosts in {len(rounds)} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    for k in range(len(rounds)):
        what = "every message opens its host's file" if k == 0 else "appends"
        cells = "  ".join(f"{label} {r[k]['messages'] / r[k]['seconds']:7.0f} msg/s "
                          f"({r[k]['seconds']:6.1f} s, CPU {r[k]['cpu']:5.1f} s)"
                          for label, r in results.items())
        print(f"round {k} ({what}): {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--minutes", type=int, help="instead of --hours")
    parser.add_argument("--rounds", action="store_true",
                        help="drain round by round (round 0: every message opens a file)")
    parser.add_argument("--src", default="", help="with --rounds: a checkout to compare with")
    args = parser.parse_args()
    hours = args.minutes / 60 if args.minutes else args.hours
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, hours=hours)
    bodies = [m.text.encode() for m in iter_messages(cfg)]
    n, mb = len(bodies), sum(map(len, bodies)) / 1e6
    rabbitmq.ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="hpcperf-bench-rabbit-"))
    base.chmod(0o755)
    node = rabbitmq.node(base, free_port(), name="hpcperfbench")
    node.start()
    try:
        with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
            root = Path(tmp)
            if args.rounds:
                src = str(Path(args.src).resolve()) if args.src else ""
                rounds_main(node.url, bodies, src, root)
                return
            pub = publish(node.url, bodies)
            t0 = time.perf_counter()
            res = drain_queue(node.url, QUEUE, root / "archive", root / "quarantine",
                              max_messages=n, max_seconds=3600)
            drain = time.perf_counter() - t0
            assert res.messages == n and res.quarantined == 0, res
            publish(node.url, bodies)
            bare = bare_consume(node.url, n)
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"{n} messages ({mb:.0f} MB) of {args.nodes} nodes x {hours * 60:.0f} min; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"baseline: publish with confirms {n / pub:9.0f} msg/s")
    print(f"baseline: bare consume + ack    {n / bare:9.0f} msg/s")
    print(f"drain: queue -> archive (fsync) {n / drain:9.0f} msg/s  "
          f"{pub / drain:5.2f}x publish, {bare / drain:5.2f}x bare consume")


if __name__ == "__main__":
    main()
