"""Publishing to a real RabbitMQ node, and the spool when it is unreachable.

Each ``hpcperf-monitor`` process starts with a header in its first message
(a ``--once`` run is a new process, so every ``--once`` message carries
one); a daemon sends the header once and then sample-only messages.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from pathlib import Path

import pika
import pytest
from hpcperf_monitor.rawformat import read_raw

pytestmark = pytest.mark.integration


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}/%2F"  # nothing listens there now


def drain(url: str, queue: str) -> list[tuple[pika.BasicProperties, str]]:
    """Every message waiting in ``queue``, in queue order."""
    out = []
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, passive=True)  # exists, declared by the monitor
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((props, body.decode()))


def waiting(url: str, queue: str) -> int:
    """Messages in ``queue`` now; 0 while the monitor has not declared it yet."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if conn.is_open:
            conn.close()


@pytest.fixture
def queue() -> str:
    return f"monitor-test-{uuid.uuid4().hex[:8]}"


def test_once_publishes_with_header(rabbit, queue: str, tmp_path: Path, run_monitor):
    args = ["--once", "--amqp-url", rabbit.url, "--cluster", queue, "--state-dir", str(tmp_path)]
    assert run_monitor(*args).returncode == 0
    assert run_monitor(*args).returncode == 0
    messages = drain(rabbit.url, queue)
    assert len(messages) == 2
    for number, (props, body) in enumerate(messages, start=1):
        assert props.delivery_mode == 2
        raw = read_raw(body)
        assert raw.issues == []
        assert body.startswith("$tacc_stats ")  # each --once is a new process: a header
        assert raw.samples[0].seq == number
    spool = next(tmp_path.iterdir()) / "spool"
    assert not list(spool.glob("*.msg"))


def test_unreachable_broker_spools_then_replays_in_order(
    rabbit, queue: str, tmp_path: Path, run_monitor
):
    state = ["--cluster", queue, "--state-dir", str(tmp_path), "--once"]
    down = closed_port_url()
    for _ in range(2):
        result = run_monitor("--amqp-url", down, *state)
        assert result.returncode == 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "kept in spool" in lines[0], result.stderr
        assert "Traceback" not in result.stderr and "guest:guest" not in result.stderr
    spool = next(tmp_path.iterdir()) / "spool"
    assert len(list(spool.glob("*.msg"))) == 2

    assert run_monitor("--amqp-url", rabbit.url, *state).returncode == 0
    messages = [read_raw(body) for _, body in drain(rabbit.url, queue)]
    assert [m.issues for m in messages] == [[], [], []]
    assert [m.samples[0].seq for m in messages] == [1, 2, 3]
    assert all(m.headers for m in messages)
    times = [m.samples[0].time for m in messages]
    assert times == sorted(times)
    assert not list(spool.glob("*.msg"))


def test_daemon_sends_header_once(rabbit, queue: str, tmp_path: Path, start_monitor, tree4):
    proc = start_monitor("--amqp-url", rabbit.url, "--cluster", queue, "--interval", "1",
                         "--root", str(tree4), "--state-dir", str(tmp_path))
    # Wait for three samples rather than a fixed time: a loaded machine starts the
    # monitor slowly, and the assertion is about the header, not the clock.
    deadline = time.monotonic() + 60
    while waiting(rabbit.url, queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    bodies = [body for _, body in drain(rabbit.url, queue)]
    assert len(bodies) >= 3
    assert bodies[0].startswith("$") and not any(b.startswith("$") for b in bodies[1:])
    raw = read_raw("".join(bodies))  # as the pipeline appends them to one archive file
    assert raw.issues == [] and len(raw.headers) == 1
    assert [s.seq for s in raw.samples] == list(range(1, len(bodies) + 1))
    assert raw.samples[0].rows["numa"]["1"] == (2000001, 6, 7, 8, 2000000, 9)
