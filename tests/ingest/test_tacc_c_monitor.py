"""Item 12 (drain part): messages of TACC's C monitor 2.3.5 through the real drain.

The six captured messages (``tests/fixtures/real/tacc-c-monitor-2.3.5``) go
through a real RabbitMQ, the drain and host_data into PostgreSQL; the CPU
rates must be the README's ground truth to the digits it gives. The C
monitor's spool replay can deliver a header with no sample: it must open a
new archive file (named by the receive time, empty index, fsynced before
the ack), and the samples after it must be read with that header.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from hpcperfstats.archive.store import read_index
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import drain_queue

from .conftest import HOUR, publish

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "tacc-c-monitor-2.3.5"
MESSAGES = [(FIXTURE / f"msg0{i}.txt").read_bytes() for i in range(1, 7)]
HOUR_START = datetime(2026, 11, 28, 8, tzinfo=UTC)  # all six samples: 08:04:37 - 08:05:13
# README: interval ending (epoch, 3 decimals) -> cores busy (user + system of both CPUs)
README_CPU = {1795853087.012: 0.018003, 1795853090.016: 0.029961, 1795853100.018: 1.010779,
              1795853110.017: 0.737061, 1795853113.022: 0.026621}


def drain(rabbit, queue, dirs):
    return drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                       max_messages=100, max_seconds=60)


def cpu_busy(dirs, pg_url) -> dict[float, float]:
    with psycopg.connect(pg_url) as conn:
        load = build_host_data(conn, dirs["archive"], HOUR_START, HOUR_START + HOUR, 3600)
        assert load.issues == 0
        rows = conn.execute(
            "SELECT round(extract(epoch FROM time)::numeric, 3)::float8, sum(value) "
            "FROM host_data WHERE host = 'vm' AND type = 'cpu' AND device = '' "
            "AND event IN ('user', 'system') GROUP BY 1 ORDER BY 1").fetchall()
    return {t: round(v, 6) for t, v in rows}


def test_item12_c_monitor_messages_load_with_the_readme_cpu_rates(rabbit, queue, dirs, pg_url):
    publish(rabbit.url, queue, MESSAGES)
    result = drain(rabbit, queue, dirs)
    assert (result.messages, result.samples, result.quarantined) == (6, 6, 0)
    assert cpu_busy(dirs, pg_url) == README_CPU


def split_header(message: bytes) -> tuple[bytes, bytes]:
    """msg01 as a spool replay may deliver it: the header alone, then its sample."""
    cut = message.index(b"\n1795853077.013625 - vm") + 1
    return message[:cut], message[cut:]


def test_item12_header_only_message_opens_a_file_and_the_samples_follow_it(
        rabbit, queue, dirs, pg_url):
    head, first = split_header(MESSAGES[0])
    before = int(time.time())
    publish(rabbit.url, queue, [head])
    result = drain(rabbit, queue, dirs)  # acked: so its file is durable now
    assert (result.headers_only, result.quarantined) == (1, 0)
    (path,) = [p for p in (dirs["archive"] / "vm").iterdir() if p.name.isdigit()]
    assert before <= int(path.name) <= time.time()  # named by the receive time
    assert path.read_bytes() == head
    index = read_index(path)
    assert index.entries == [] and index.header_end == len(head)

    publish(rabbit.url, queue, [first, *MESSAGES[1:]])
    result = drain(rabbit, queue, dirs)
    assert (result.samples, result.quarantined) == (6, 0)
    assert [p.name for p in (dirs["archive"] / "vm").iterdir() if p.name.isdigit()] == [path.name]
    assert len(read_index(path).entries) == 6
    assert cpu_busy(dirs, pg_url) == README_CPU


def test_item12_header_only_message_replaces_the_hosts_header(rabbit, queue, dirs, pg_url):
    head, _ = split_header(MESSAGES[0])
    # the node rebooted between msg03 and msg04: a new header (uptime 5 s), no sample
    reboot = head.replace(b"$uptime 4298", b"$uptime 5")
    publish(rabbit.url, queue, [*MESSAGES[:3], reboot, *MESSAGES[3:]])
    result = drain(rabbit, queue, dirs)
    assert (result.samples, result.headers_only, result.quarantined) == (6, 1, 0)
    files = sorted(p for p in (dirs["archive"] / "vm").iterdir() if p.name.isdigit())
    assert [len(read_index(p).entries) for p in files] == [3, 3]
    # msg04 starts a new series under the new header: no rate across the "reboot"
    expected = {t: v for t, v in README_CPU.items() if t != 1795853100.018}
    assert cpu_busy(dirs, pg_url) == expected
