"""A drain killed between fsync and ack loses nothing and duplicates nothing."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import drain_queue, queue_depth
from hpcperfstats.ingest.pending import Pending

from .conftest import HOUR, START, demo_bodies, publish, reference_rows
from .hostile import DIE_AFTER_SYNC

pytestmark = pytest.mark.integration

CHILD = DIE_AFTER_SYNC + """
import sys
from pathlib import Path
from hpcperfstats.ingest.drain import drain_queue
url, queue, archive, quarantine, state = sys.argv[1:]
drain_queue(url, queue, Path(archive), Path(quarantine), Path(state),
            max_messages=1000, max_seconds=30, batch=10)
"""


def indexed_samples(archive) -> int:
    """Sample lines of every index (``$`` lines are header blocks)."""
    return sum(1 for p in archive.glob("*/*.idx") for line in p.read_text().splitlines()
               if not line.startswith("$"))


def test_killed_after_fsync_before_ack_then_restarted(rabbit, queue, dirs, pg_url):
    bodies = demo_bodies(nodes=3, hours=1)  # 3 hosts x 12 samples
    assert len(bodies) == 36
    publish(rabbit.url, queue, bodies)
    args = [rabbit.url, queue, str(dirs["archive"]), str(dirs["quarantine"]), str(dirs["state"])]
    child = subprocess.run([sys.executable, "-c", CHILD, *args], timeout=60)
    assert child.returncode == 70  # died right after the first batch's fsync
    # the first 10 messages are in the archive, and still in the queue (never acked)
    assert indexed_samples(dirs["archive"]) == 10
    assert queue_depth(rabbit.url, queue) == 36
    assert Pending(dirs["state"], "host_data").items()  # hour marked before the crash

    result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"], dirs["state"],
                         max_messages=1000, max_seconds=30, batch=10)
    assert (result.messages, result.quarantined, result.duplicates) == (36, 0, 10)
    assert queue_depth(rabbit.url, queue) == 0
    # the 10 redelivered messages were recognised: the archive holds each sample once
    assert indexed_samples(dirs["archive"]) == 36

    with psycopg.connect(pg_url) as conn:
        load = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        rows = conn.execute("SELECT count(*), count(DISTINCT (host, time)) FROM host_data"
                            ).fetchone()
    expected = reference_rows(bodies, START, START + HOUR)
    # and host_data: every row of the reference, each once
    assert load.samples == 36 and load.samples_unloaded == 0
    assert rows == (expected.height, 36)
