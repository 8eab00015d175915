"""Issue 17: a drain batch fsyncs each touched file once, side by side, with
few descriptors open whatever the number of hosts.

With 10,000 hosts a batch touches one file per message, and fsyncs one
after another cost a journal commit each; side by side the file system
commits them together. Durability before the ack is unchanged
(``test_drain_crash.py``); these tests pin what the batch does.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hpcperfstats.archive import store as archive_store
from hpcperfstats.archive.store import SYNC_THREADS, read_index
from hpcperfstats.ingest.drain import MessageStore, drain_queue, queue_depth, store_messages
from hpcperfstats.ingest.publish import publish_messages

from .hostile import good_messages


def test_a_batch_fsyncs_each_touched_file_and_its_index_once(dirs, monkeypatch):
    synced: list[str] = []
    lock = threading.Lock()
    real = os.fsync

    def counting(fd: int) -> None:
        with lock:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    # first a file for each of two hosts (new files are made whole at once)
    assert store_messages(good_messages("n1", 1) + good_messages("n2", 1),
                          dirs["archive"], dirs["quarantine"]).quarantined == 0
    monkeypatch.setattr(archive_store.os, "fsync", counting)
    ms = MessageStore(dirs["archive"], dirs["quarantine"], 1 << 20)
    # three appends to n1 and one to n2 in one batch
    for k, body in enumerate(good_messages("n1", 4)[1:] + good_messages("n2", 2)[1:]):
        ms.store(body, f"test:{k}")
    assert synced == []  # nothing durable before sync
    ms.sync()
    files = {Path(p) for p in synced}
    data = {next((dirs["archive"] / h).glob("[0-9]*[0-9]")) for h in ("n1", "n2")}
    assert sorted(synced) == sorted(str(p) for f in data
                                    for p in (f.resolve(), f.with_name(f.name + ".idx").resolve()))
    assert len(files) == 4
    synced.clear()
    ms.sync()  # nothing written since: nothing to fsync
    assert synced == []
    assert [len(read_index(f).entries) for f in sorted(data)] == [4, 2]


CHILD = """
import resource, sys
from pathlib import Path
from hpcperfstats.ingest.drain import store_messages
sys.path.insert(0, sys.argv[3])
from tests.ingest.hostile import good_messages
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
hosts = [f"c{i:03d}" for i in range(300)]
archive, quarantine = Path(sys.argv[1]), Path(sys.argv[2])
first = store_messages([good_messages(h, 1)[0] for h in hosts], archive, quarantine)
# one batch of appends touching 300 files (600 with their indexes)
more = store_messages([m for h in hosts for m in good_messages(h, 3)[1:]], archive, quarantine)
print(first.messages, first.quarantined, more.messages, more.quarantined)
"""


@pytest.mark.integration
def test_a_batch_of_300_hosts_is_stored_under_a_64_descriptor_limit(dirs):
    """Far more hosts than descriptors: a drain never holds a file per host
    (at most ``SYNC_THREADS`` fsyncs in flight)."""
    assert SYNC_THREADS < 64 - 10  # stdin/out/err, the interpreter's own
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", CHILD, str(dirs["archive"]),
                          str(dirs["quarantine"]), str(root)],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["300", "0", "600", "0"]
    indexes = sorted(dirs["archive"].glob("*/*.idx"))
    assert len(indexes) == 300
    assert all(len(read_index(p.with_suffix("")).entries) == 3 for p in indexes)


def test_a_batch_opening_many_files_syncs_them_side_by_side_then_renames(dirs, monkeypatch):
    """40 hosts' first messages and an append to each, one batch: nothing is
    visible before ``sync``; there every new file and index (written aside)
    is fsynced once, then renamed, index first, then each directory that
    gained a name is fsynced once. Nothing is fsynced one file at a time
    while storing (the old way: three fsyncs in a row per new file)."""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        with lock:
            events.append(("rename", f"{src} {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(archive_store.os, "fsync", fsync)
    monkeypatch.setattr(archive_store.os, "replace", replace)
    hosts = [f"h{i:02d}" for i in range(40)]
    ms = MessageStore(dirs["archive"], dirs["quarantine"], 1 << 20)
    for k, body in enumerate([good_messages(h, 2)[0] for h in hosts]
                             + [good_messages(h, 2)[1] for h in hosts]):
        ms.store(body, f"test:{k}")
    assert ms.result.quarantined == 0 and events == []
    assert [p for p in dirs["archive"].glob("*/*") if not p.name.startswith(".")] == []
    ms.sync()

    kinds = [kind for kind, _ in events]
    files = [p for kind, p in events if kind == "fsync" and not Path(p).is_dir()]
    directories = [p for kind, p in events if kind == "fsync" and Path(p).is_dir()]
    renames = [p.split() for kind, p in events if kind == "rename"]
    # all file fsyncs, then all renames, then all directory fsyncs
    assert kinds == ["fsync"] * 80 + ["rename"] * 80 + ["fsync"] * 41
    # each file and its index once, under its hidden name (the renames keep the inode)
    assert len(set(files)) == 80
    assert sorted(Path(p).name.startswith(".") for p in files) == [True] * 80
    assert sorted(directories) == sorted([str(dirs["archive"].resolve())]
                                         + [str((dirs["archive"] / h).resolve()) for h in hosts])
    # per file: index renamed, then data
    for (idx_src, idx_dst), (src, dst) in zip(renames[::2], renames[1::2], strict=True):
        assert idx_dst == dst + ".idx" and idx_src == src + ".idx"
        assert Path(src).name == f".{Path(dst).name}.new"
    for h in hosts:  # both samples in the one file, indexed
        (data,) = [p for p in (dirs["archive"] / h).iterdir() if p.name.isdigit()]
        assert len(read_index(data).entries) == 2
    assert [p for p in dirs["archive"].glob("*/.*")] == []


@pytest.mark.integration
def test_a_disk_failing_in_a_batch_opening_files_acks_nothing_and_a_retry_recovers(
        rabbit, queue, dirs, monkeypatch):
    """An fsync error (EIO) while a batch's new files are synced: the drain
    stops, nothing of the batch is visible or acked; the next drain archives
    every message once, the files written aside the first time swept."""
    bodies = [m for h in (f"e{i:02d}" for i in range(25)) for m in good_messages(h, 2)]
    publish_messages(rabbit.url, queue, bodies)
    real_fsync, calls = os.fsync, []

    def failing(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 17:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(archive_store.os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                    max_messages=100, max_seconds=30, batch=50)
    monkeypatch.setattr(archive_store.os, "fsync", real_fsync)
    assert queue_depth(rabbit.url, queue) == 50
    assert [p for p in dirs["archive"].glob("*/*") if not p.name.startswith(".")] == []
    assert any(dirs["archive"].glob("*/.*.new"))  # written aside, never renamed

    result = drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                         max_messages=100, max_seconds=30, batch=50)
    assert (result.messages, result.quarantined, result.duplicates) == (50, 0, 0)
    assert queue_depth(rabbit.url, queue) == 0
    files = [p for p in dirs["archive"].glob("*/*") if p.name.isdigit()]
    assert len(files) == 25 and all(len(read_index(p).entries) == 2 for p in files)
    assert list(dirs["archive"].glob("*/.*")) == []
