"""The publisher's behaviour when no broker answers (no RabbitMQ needed)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from hpcperf_monitor.publisher import Publisher, connection_parameters, describe
from hpcperf_monitor.spool import Spool
from hpcperf_monitor.state import flocked


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_broker_keeps_messages(tmp_path: Path, caplog):
    url = f"amqp://node:secret@127.0.0.1:{closed_port()}/%2F"
    publisher = Publisher(url, "demo", Spool(tmp_path))
    with caplog.at_level(logging.ERROR, logger="hpcperf_monitor"):
        assert publisher.send(1, "1 - n1\n") == 0
        assert publisher.send(2, "2 - n1\n") == 0
    assert [p.read_text() for p in publisher.spool.pending()] == ["1 - n1\n", "2 - n1\n"]
    errors = [r.getMessage() for r in caplog.records if r.name.startswith("hpcperf_monitor")]
    assert len(errors) == 2
    assert "1 message(s) kept in spool" in errors[0] and "2 message(s)" in errors[1]
    assert "secret" not in caplog.text  # the password never reaches a log


def test_busy_spool_leaves_message_for_the_sender(tmp_path: Path, caplog):
    spool = Spool(tmp_path)
    publisher = Publisher("amqp://127.0.0.1:1/%2F", "demo", spool, lock_timeout=0.1)
    with flocked(spool.lock):  # another monitor process is draining
        assert publisher.send(5, "5 - n1\n") == 0
    assert len(spool.pending()) == 1
    assert "another monitor process is sending" in caplog.text


def test_short_timeouts_unless_the_url_sets_them():
    params = connection_parameters("amqp://guest:guest@h:5672/%2F")
    assert (params.connection_attempts, params.socket_timeout) == (1, 5.0)
    params = connection_parameters("amqp://h/%2F?socket_timeout=30&connection_attempts=3")
    assert (params.connection_attempts, params.socket_timeout) == (3, 30.0)


def test_describe_is_one_line():
    assert describe(OSError("a\nb")) == "OSError: a b"
