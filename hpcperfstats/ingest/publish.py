"""Publish raw stats messages the way the monitor does: durable, persistent, confirmed.

For everything that feeds a queue without being a node: the demo, the
benchmarks and the tests. Nodes use ``hpcperf_monitor.publisher``, which adds
the spool; the broker sees the same messages either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pika


def publish_messages(
    url: str,
    queue: str,
    bodies: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    every: int = 2000,
) -> int:
    """Send each body to the durable ``queue`` with publisher confirms; returns the count.

    ``progress(sent)`` is called every ``every`` messages and at the end.
    """
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.queue_declare(queue=queue, durable=True)
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
        sent = 0
        for body in bodies:
            channel.basic_publish("", queue, body, props)
            sent += 1
            if progress and sent % every == 0:
                progress(sent)
        if progress and sent % every:
            progress(sent)
        return sent
    finally:
        if conn.is_open:
            conn.close()
