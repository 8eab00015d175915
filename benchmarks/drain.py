"""Queue -> archive: messages/s of ``drain_queue`` against RabbitMQ's own pace.

``python -m benchmarks.drain [--nodes 1000] [--hours 24 | --minutes 10]``
(``--nodes 10000 --minutes 10``: a batch touches a file per message, the
case the side-by-side fsyncs of a batch are for). On a private
RabbitMQ node, the day's messages of ``DemoConfig(nodes, hours)`` are
published with confirms (baseline 1: the publish rate), drained into a
temporary archive (validate, append, index, fsync, then ack in batches), then
published again and consumed with a bare batched ack that stores nothing
(baseline 2). Ratios are against these baselines from the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--minutes", type=int, help="instead of --hours")
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
