"""Issue 17: a drain batch fsyncs each touched file once, side by side, with
few descriptors open whatever the number of hosts.

With 10,000 hosts a batch touches one file per message, and fsyncs one
after another cost a journal commit each; side by side the file system
commits them together. Durability before the ack is unchanged
(``test_drain_crash.py``); these tests pin what the batch does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hpcperfstats.archive import store as archive_store
from hpcperfstats.archive.store import SYNC_THREADS, read_index
from hpcperfstats.ingest.drain import MessageStore, store_messages

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
