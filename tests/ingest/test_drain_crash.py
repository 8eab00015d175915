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

from hpcperfstats.archive.store import read_index
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import drain_queue, queue_depth

from .conftest import HOUR, START, demo_bodies, publish, reference_rows, samples_host
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


# --- a batch that opens many files (issue 17: new files made durable as a batch) ---

#: the child drain of 30 hosts in batches of 20: its first batch opens 20 files.
#: ``die`` is where in that batch's sync it dies (the fault is injected here by
#: wrapping the file system calls the writer makes; the product has no hook)
MANY = """
import os, sys
from pathlib import Path
from hpcperfstats.archive import store
from hpcperfstats.ingest.drain import drain_queue
url, queue, archive, quarantine, die = sys.argv[1:]
renames = 0
_replace, _fsync_all = os.replace, store._fsync_all
def replace(src, dst):
    global renames
    if die == "before_rename" or die == "mid_rename" and renames == 7:
        os._exit(70)
    _replace(src, dst)
    renames += 1
def fsync_all(targets):
    if die == "before_dir_fsync" and targets and Path(targets[0]).is_dir():
        os._exit(70)
    _fsync_all(targets)
store.os.replace = replace
store._fsync_all = fsync_all
drain_queue(url, queue, Path(archive), Path(quarantine),
            max_messages=1000, max_seconds=30, batch=20)
"""


def sample_key(body: bytes) -> tuple[str, float]:
    """(host, time) of a demo message's one sample."""
    record = next(line for line in body.decode().splitlines() if line[:1].isdigit())
    return samples_host(record), float(record.split()[0])


def visible_files(archive) -> list:
    return sorted(p for p in archive.glob("*/*") if p.name.isdigit())


def archived_samples(archive) -> list[tuple[str, float]]:
    return sorted((p.parent.name, e.time) for p in visible_files(archive)
                  for e in read_index(p).entries)


@pytest.mark.parametrize("die", ["before_rename", "mid_rename", "before_dir_fsync",
                                 "renames_lost"])
def test_killed_inside_a_batch_that_opens_many_files(rabbit, queue, dirs, die):
    """Killed while the first batch's 20 new files become visible: before any
    rename, after 7 renames (the fourth file's index is in place, its data is
    not), after every rename but before the directories' fsync, and the same
    with the renames then lost (what a power cut before that fsync may do).
    Never a half file visible; after a restart every sample archived once."""
    bodies = demo_bodies(nodes=30, hours=1)  # 30 header messages first, then samples
    publish(rabbit.url, queue, bodies)
    args = [rabbit.url, queue, str(dirs["archive"]), str(dirs["quarantine"]),
            "before_dir_fsync" if die == "renames_lost" else die]
    died = subprocess.run([sys.executable, "-c", MANY, *args], timeout=60)
    assert died.returncode == 70
    assert queue_depth(rabbit.url, queue) == 360  # nothing acked
    visible = visible_files(dirs["archive"])
    assert len(visible) == {"before_rename": 0, "mid_rename": 3}.get(die, 20)
    for path in visible:  # each visible file whole: its index claims exactly its bytes
        index = read_index(path)
        assert index.clean and index.committed == path.stat().st_size and index.entries
    if die == "renames_lost":  # the directories' entries as before the renames
        for path in visible:
            idx = path.with_name(path.name + ".idx")
            idx.rename(path.with_name(f".{path.name}.new.idx"))
            path.rename(path.with_name(f".{path.name}.new"))

    result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                         max_messages=1000, max_seconds=30, batch=20)
    assert queue_depth(rabbit.url, queue) == 0
    assert (result.messages, result.quarantined) == (360, 0)
    assert result.duplicates == (20 if die == "before_dir_fsync" else
                                 3 if die == "mid_rename" else 0)
    assert archived_samples(dirs["archive"]) == sorted(map(sample_key, bodies))
    # nothing written aside is left behind, and no index without its file
    leftovers = [p for p in dirs["archive"].glob("*/*") if p.name.startswith(".")]
    assert leftovers == []
    assert all(p.with_suffix("").exists() for p in dirs["archive"].glob("*/*.idx"))
