"""A drain killed between fsync and ack loses nothing and duplicates nothing.

Two places to die: right after the fsync (the hours not yet reported to
Dagster) and inside the report (reported, not yet acked). Either way the
batch is redelivered, recognised in the archive, and its hours reported by
the next drain, so ``host_data`` still follows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import drain_queue, queue_depth

from .conftest import HOUR, START, demo_bodies, publish, reference_rows
from .hostile import DIE_AFTER_SYNC

pytestmark = pytest.mark.integration

DRAIN = """
import sys
from pathlib import Path
from hpcperfstats.ingest.drain import drain_queue
url, queue, archive, quarantine, told = sys.argv[1:]
drain_queue(url, queue, Path(archive), Path(quarantine),
            max_messages=1000, max_seconds=30, batch=10, archived=archived)
"""
#: dies after the fsync, before the hours are reported and the batch acked
DIES_BEFORE_REPORT = DIE_AFTER_SYNC + "archived = None\n" + DRAIN
#: dies once the hours are reported (written down here), before the ack
DIES_AFTER_REPORT = """
import json, os, sys
def archived(hours):
    open(sys.argv[5], "w").write(json.dumps(sorted(hours)))
    os._exit(70)
""" + DRAIN

HOUR_KEY = "2026-11-20-12:00"


def indexed_samples(archive) -> int:
    """Sample lines of every index (``$`` lines are header blocks)."""
    return sum(1 for p in archive.glob("*/*.idx") for line in p.read_text().splitlines()
               if not line.startswith("$"))


@pytest.mark.parametrize("child", [DIES_BEFORE_REPORT, DIES_AFTER_REPORT],
                         ids=["before_report", "after_report"])
def test_killed_after_fsync_before_ack_then_restarted(rabbit, queue, dirs, pg_url, tmp_path,
                                                       child):
    bodies = demo_bodies(nodes=3, hours=1)  # 3 hosts x 12 samples
    assert len(bodies) == 36
    publish(rabbit.url, queue, bodies)
    told_file = tmp_path / "told.json"
    args = [rabbit.url, queue, str(dirs["archive"]), str(dirs["quarantine"]), str(told_file)]
    died = subprocess.run([sys.executable, "-c", child, *args], timeout=60)
    assert died.returncode == 70  # died right after the first batch's fsync
    # the first 10 messages are in the archive, and still in the queue (never acked)
    assert indexed_samples(dirs["archive"]) == 10
    assert queue_depth(rabbit.url, queue) == 36
    if child is DIES_AFTER_REPORT:  # the hour was reported before the ack
        assert json.loads(told_file.read_text()) == [HOUR_KEY]

    told: set[str] = set()
    result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                         max_messages=1000, max_seconds=30, batch=10, archived=told.update)
    assert (result.messages, result.quarantined, result.duplicates) == (36, 0, 10)
    assert queue_depth(rabbit.url, queue) == 0
    # the 10 redelivered messages were recognised: the archive holds each sample once
    assert indexed_samples(dirs["archive"]) == 36
    # and their hour is reported (again, or for the first time)
    assert told == {HOUR_KEY}

    with psycopg.connect(pg_url) as conn:
        load = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        rows = conn.execute("SELECT count(*), count(DISTINCT (host, time)) FROM host_data"
                            ).fetchone()
    expected = reference_rows(bodies, START, START + HOUR)
    # and host_data: every row of the reference, each once
    assert load.samples == 36 and load.samples_unloaded == 0
    assert rows == (expected.height, 36)
