"""Issue 12 (drain half): no single message stops, corrupts or duplicates ingest.

Each test is named for the numbered item it proves; all run on a real
RabbitMQ node and, where rows are checked, the real test PostgreSQL.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psycopg
import pytest
from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.archive import quarantine
from hpcperfstats.archive.store import read_index, repair
from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.ingest.drain import (
    EpochWindow,
    drain_queue,
    epoch_problem,
    queue_depth,
    split_message,
    store_messages,
)
from hpcperfstats.ingest.importer import import_archive

from .conftest import HOUR, START, publish
from .hostile import (
    DIE_AFTER_SYNC,
    Crash,
    E,
    files_under,
    good_messages,
    header,
    sample,
    tearing_opener,
)

pytestmark = pytest.mark.integration


def drain(rabbit, queue, dirs, **kw):
    return drain_queue(rabbit.url, queue, dirs["archive"], dirs["quarantine"],
                       max_messages=kw.pop("max_messages", 1000), max_seconds=60, **kw)


def one_host_rows(bodies: list[bytes]) -> pl.DataFrame:
    """host_data rows of one host's messages, by the reference reader."""
    raw = read_raw(b"".join(b if b.endswith(b"\n") else b + b"\n" for b in bodies).decode())
    return host_rows(long_frame(raw.samples), START.timestamp(), (START + HOUR).timestamp())


def load(dirs, pg_url) -> tuple[int, int, int]:
    """(rows, distinct samples, samples not loaded) of the test hour in host_data."""
    with psycopg.connect(pg_url) as conn:
        res = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        rows, samples = conn.execute(
            "SELECT count(*), count(DISTINCT (host, time)) FROM host_data").fetchone()
    return rows, samples, res.samples_unloaded


def records(dirs) -> list[dict]:
    return quarantine.list_records(dirs["quarantine"], limit=1000)


def archived(dirs, host: str = "n1") -> bytes:
    files = sorted(p for p in (dirs["archive"] / host).iterdir() if p.name.isdigit())
    return b"".join(p.read_bytes() for p in files)


# -- item 1 -------------------------------------------------------------------------------


def test_item1_epochs_are_ascii_decimal_inside_the_window():
    window = EpochWindow(received=1_800_000_000.0 - 86400, earliest=946684800.0,
                         max_ahead_s=86400.0)  # accepts 2000-01-01 .. 1.8e9
    assert epoch_problem("1795853077.013625", window) is None
    for text in ("1e20", "1e999", "inf", "nan", "٨٠٥١٢٣٣", "1_795_853_077", "+1795853077",
                 "0x6b0a", "1795853077."):
        assert "not a plain ASCII decimal" in epoch_problem(text, window), text
    assert "outside" in epoch_problem("946684799", window)  # 1999-12-31 23:59:59
    assert "outside" in epoch_problem("1800000001", window)


def test_item1_any_failure_quarantines_that_message_and_the_drain_goes_on(
        rabbit, queue, dirs, pg_url, monkeypatch):
    good = good_messages("n1", n=4)
    now = int(time.time())
    bad = [
        sample("1e20", k=9).encode(),  # OverflowError in hour_key before
        sample("1e999", k=9).encode(),  # ValueError before
        sample("٨٠٥١٢٣٣", k=9).encode(),  # non-ASCII digits
        sample(946684799, k=9).encode(),  # before 2000-01-01
        sample(now + 2 * 86400, k=9).encode(),  # two days ahead of its receive time
        (sample(E + 90, k=9) + "#boom\n").encode(),  # the archive write fails mid-way
    ]
    publish(rabbit.url, queue, good[:2] + bad + good[2:])
    boom = tearing_opener(b"#boom", lambda d: len(d) // 2, ValueError("disk said no"))
    result = drain(rabbit, queue, dirs, batch=3, opener=boom)
    assert (result.messages, result.samples, result.quarantined) == (10, 4, 6)
    assert queue_depth(rabbit.url, queue) == 0  # everything acked: nothing to retry
    assert archived(dirs) == b"".join(good)  # the failed write was undone, nothing else there
    reasons = sorted(r["reason"] for r in records(dirs))
    # "bad epochs" (the drain's window check) or bad lines (the reader's own epoch rule);
    # a line starting with a non-ASCII digit is no record line at all (the reader's rule)
    assert sum(r.startswith("unparsable") for r in reasons) == 4
    assert sum(r.startswith("no record line naming a host") for r in reasons) == 1
    assert any("failed: ValueError: disk said no" in r for r in reasons)

    # the same messages again (a retry): recognised, nothing appended or stored twice
    publish(rabbit.url, queue, good + bad)
    again = drain(rabbit, queue, dirs, opener=boom)
    assert (again.messages, again.samples, again.duplicates) == (10, 0, 4)
    assert archived(dirs) == b"".join(good)
    assert len(records(dirs)) == 6
    rows, samples, unloaded = load(dirs, pg_url)
    assert (rows, samples, unloaded) == (one_host_rows(good).height, 4, 0)


def test_item1_when_quarantine_itself_fails_the_drain_stops_without_losing_anything(
        rabbit, queue, dirs):
    good = good_messages("n1", n=2)
    publish(rabbit.url, queue, [good[0], b"\xffbad", good[1]])
    dirs["quarantine"].rmdir()
    dirs["quarantine"].write_text("not a folder")  # nowhere to keep the bad message
    with pytest.raises(OSError):
        drain(rabbit, queue, dirs)
    assert archived(dirs) == good[0]  # stored and acked before it
    assert queue_depth(rabbit.url, queue) == 2  # the bad message and the one after: kept


def test_item1_epoch_window_is_a_setting(rabbit, queue, dirs, monkeypatch):
    monkeypatch.setenv("HPCPERF_EPOCH_EARLIEST", "2026-11-21")  # after the samples: all refused
    publish(rabbit.url, queue, good_messages("n1", n=2))
    result = drain(rabbit, queue, dirs)
    assert (result.samples, result.quarantined) == (0, 2)
    assert "outside" in json.dumps([r["details"] for r in records(dirs)])


# -- item 2 -------------------------------------------------------------------------------


HOSTILE = ["/tmp/hpcperf-evil", "..", "...", ".", "a/b", "-n1", "n1-", "x" * 64, "n_1",
           "n1..example", "ﬀ1", "n1\\x"]


def test_item2_hostile_host_names_never_become_paths(rabbit, queue, dirs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (dirs["archive"] / "planted").symlink_to(outside)  # a link planted in the archive
    before = files_under(tmp_path)
    bodies = [(header(h) + sample(E, h)).encode() for h in HOSTILE]
    bodies.append((header("n1").replace("$hostname n1", "$hostname /etc") + sample(E)).encode())
    bodies.append((header("planted") + sample(E, "planted")).encode())
    bodies.append((header("N1.Example.ORG") + sample(E, "N1.Example.ORG")).encode())  # fine
    publish(rabbit.url, queue, bodies)
    result = drain(rabbit, queue, dirs)
    assert (result.messages, result.samples, result.quarantined) == (len(bodies), 1,
                                                                      len(bodies) - 1)
    assert result.hosts == {"n1"}
    new = files_under(tmp_path) - before
    # only the archive's n1 folder and quarantine
    assert new and all(p.is_relative_to(dirs["archive"] / "n1") or p.is_relative_to(
        dirs["quarantine"]) for p in new)
    assert not any(outside.iterdir())
    reasons = [r["reason"] for r in records(dirs)]
    assert sum(r.startswith("bad host") for r in reasons) == len(HOSTILE) + 1
    assert any("outside" in r for r in reasons)  # the symlink: refused by the path proof


def test_item2_links_planted_as_archive_files_are_never_written(rabbit, queue, dirs, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text(header("n1") + sample(E))
    host = dirs["archive"] / "n1"
    host.mkdir()
    (host / str(E)).symlink_to(victim)  # the host's "current file" leads outside the archive
    before = victim.read_bytes()
    publish(rabbit.url, queue, [sample(E + 60, k=1).encode()])
    result = drain(rabbit, queue, dirs)
    assert (result.samples, result.quarantined) == (0, 1)
    assert victim.read_bytes() == before and not (host / f"{E}.idx").exists()
    assert "outside" in records(dirs)[0]["reason"]


def test_item2_import_refuses_bad_host_folders(tmp_path, dirs):
    src = tmp_path / "old"
    for name in ("...", "n_1", "n2.example.org"):
        (src / name).mkdir(parents=True)
        (src / name / str(E)).write_text(header("n2") + sample(E, "n2"))
    res = import_archive(src, dirs["archive"], dirs["quarantine"])
    assert (res.files, res.rejected) == (1, 2)
    assert sorted(p.name for p in dirs["archive"].iterdir()) == ["n2"]
    assert sum("not an RFC 1123 host name" in r["reason"] for r in records(dirs)) == 2


# -- item 3 -------------------------------------------------------------------------------


def test_item3_first_significant_line_decides_and_late_headers_split():
    assert split_message("# hi\n\n$a 1\n1 - n\n") == [("# hi\n\n$a 1\n1 - n\n", True)]
    text = "\n1 - n\nx 0 1\n$a 1\n!x e\n2 - n\nx 0 2\n"
    assert split_message(text) == [("\n1 - n\nx 0 1\n", False), ("$a 1\n!x e\n2 - n\nx 0 2\n",
                                                                  True)]


def test_item3_restart_header_after_comment_opens_a_new_file(rabbit, queue, dirs, pg_url):
    first = good_messages("n1", n=2)
    restart = ("# node rebooted\n\n" + header("n1", uptime=30) + sample(E + 600, k=0)).encode()
    after = sample(E + 660, k=1).encode()
    # one message: a sample, then a header block (a reboot) and its first sample
    mixed = (sample(E + 1200, k=2) + header("n1", uptime=20) + sample(E + 1260, k=0)).encode()
    publish(rabbit.url, queue, first + [restart, after, mixed])
    result = drain(rabbit, queue, dirs)
    assert (result.samples, result.quarantined) == (6, 0)
    files = sorted(p.name for p in (dirs["archive"] / "n1").iterdir() if p.name.isdigit())
    assert files == [str(E), str(E + 600), str(E + 1260)]
    assert [e.time for e in read_index(dirs["archive"] / "n1" / str(E + 600)).entries] == [
        E + 600, E + 660, E + 1200]
    rows, samples, unloaded = load(dirs, pg_url)
    assert (samples, unloaded) == (6, 0)
    with psycopg.connect(pg_url) as conn:
        cpu = conn.execute(
            "SELECT extract(epoch FROM time)::bigint - %s, sum(value) FROM host_data "
            "WHERE type = 'cpu' AND device = '' AND event IN ('user', 'system') "
            "GROUP BY 1 ORDER BY 1", (E,)).fetchall()
    # 75 cs of user+system per CPU per step, 2 CPUs: 150 cs / 60 s = 2.5 cs/s = 0.025 s/s;
    # E+1200 follows E+660 by 540 s: 150 cs / 540 s. No rate across the reboots (E+600, E+1260)
    assert cpu == [(60, pytest.approx(0.025)), (660, pytest.approx(0.025)),
                   (1200, pytest.approx(1.5 / 540))]


# -- item 4 -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["byte", "line"])
def test_item4_torn_append_is_cut_back_and_the_redelivery_loads_complete(
        rabbit, queue, dirs, pg_url, where):
    good = good_messages("n1", n=4)
    torn = good[2]
    if where == "line":  # the tear falls just after the first cpu line
        keep = torn.index(b"\ncpu 1 ") + 1
    else:  # inside a number
        keep = torn.index(b"\ncpu 1 ") + 9
    publish(rabbit.url, queue, good)
    crash = tearing_opener(torn, lambda d: keep, Crash())
    with pytest.raises(Crash):
        drain(rabbit, queue, dirs, batch=1, opener=crash)
    path = dirs["archive"] / "n1" / str(E)
    assert path.read_bytes().endswith(torn[:keep])  # the crash left a torn tail

    result = drain(rabbit, queue, dirs)  # a new drain: repairs on open, then redelivery
    assert result.torn_bytes_cut == keep and result.quarantined == 0
    assert path.read_bytes() == b"".join(good)
    cut = [r for r in records(dirs) if r["reason"].startswith("torn append")]
    assert len(cut) == 1 and cut[0]["bytes"] == keep
    assert open(cut[0]["path"], "rb").read() == torn[:keep]  # kept, not deleted
    rows, samples, unloaded = load(dirs, pg_url)
    assert (rows, samples, unloaded) == (one_host_rows(good).height, 4, 0)


def test_item1_message_is_archived_whole_or_not_at_all(rabbit, queue, dirs):
    good = good_messages("n1", n=2)
    # a sample for the current file, then a restart header whose new file cannot be written
    mixed = (sample(E + 120, k=2) + header("n1", uptime=7) + sample(E + 180, k=0)).encode()
    publish(rabbit.url, queue, [*good, mixed])
    fail = tearing_opener(b"$uptime 7", lambda d: 10, OSError(errno.EIO, "I/O error"))
    result = drain(rabbit, queue, dirs, opener=fail)
    assert (result.samples, result.quarantined) == (2, 1)
    assert archived(dirs) == b"".join(good)  # its first part was undone too
    assert [p.name for p in (dirs["archive"] / "n1").iterdir()] in (
        [str(E), f"{E}.idx"], [f"{E}.idx", str(E)])
    assert "I/O error" in records(dirs)[0]["reason"]


def test_item4_failed_append_is_undone_and_the_drain_goes_on(rabbit, queue, dirs):
    good = good_messages("n1", n=4)
    publish(rabbit.url, queue, good)
    full = tearing_opener(good[2], lambda d: 7, OSError(errno.ENOSPC, "No space left on device"))
    result = drain(rabbit, queue, dirs, opener=full)
    assert (result.samples, result.quarantined) == (3, 1)
    assert archived(dirs) == good[0] + good[1] + good[3]  # nothing partial left behind
    assert "No space left on device" in records(dirs)[0]["reason"]


def test_item4_imported_files_are_never_cut(dirs):
    host = dirs["archive"] / "n3"
    host.mkdir()
    text = header("n3") + sample(E, "n3") + sample(E + 60, "n3", 1)
    (host / str(E)).write_text(text + "cpu 0 12")  # a torn tail, as an old archive may hold
    start = len(header("n3"))
    (host / f"{E}.idx").write_text(f"{E} {start}\n{E + 60} {start + len(sample(E, 'n3'))}\n")
    size = (host / str(E)).stat().st_size
    assert repair(host / str(E), dirs["quarantine"]) == 0
    store_messages([sample(E + 120, "n3", 2).encode()], dirs["archive"],
                   dirs["quarantine"])  # the drain opens it to append: still nothing cut
    data = (host / str(E)).read_bytes()
    assert len(data) == size + len(sample(E + 120, "n3", 2)) and b"cpu 0 12" in data
    assert quarantine.count(dirs["quarantine"]) == 0


# -- item 8 -------------------------------------------------------------------------------


def test_item8_quarantine_is_keyed_by_digest(tmp_path):
    root = tmp_path / "q"
    first = quarantine.put(root, b"JobID|x\n", "accounting: bad JobID", "2026-11-20.txt:3")
    again = quarantine.put(root, b"JobID|x\n", "accounting: bad JobID", "2026-11-20.txt:3")
    other = quarantine.put(root, b"JobID|y\n", "accounting: bad JobID", "2026-11-20.txt:4")
    assert (first.new, again.new, other.new) == (True, False, True)
    assert first.path == again.path and quarantine.count(root) == 2
    assert first.path.name == f"{quarantine.digest(b'JobID|x' + bytes([10]))}.raw"


CHILD = DIE_AFTER_SYNC + """
import sys
from pathlib import Path
from hpcperfstats.ingest.drain import drain_queue
url, queue, archive, quarantine = sys.argv[1:]
drain_queue(url, queue, Path(archive), Path(quarantine), max_messages=100,
            max_seconds=30)
"""


def test_item8_bad_message_redelivered_after_a_crash_is_stored_once(rabbit, queue, dirs):
    bad = [b"\x00\xffbinary", sample("1e20").encode(), (header("..") + sample(E, "..")).encode()]
    publish(rabbit.url, queue, bad)
    args = [rabbit.url, queue, *(str(dirs[k]) for k in ("archive", "quarantine"))]
    child = subprocess.run([sys.executable, "-c", CHILD, *args], timeout=120)
    assert child.returncode == 70  # died after storing the three, before acking them
    assert quarantine.count(dirs["quarantine"]) == 3 and queue_depth(rabbit.url, queue) == 3
    again = drain(rabbit, queue, dirs)
    assert again.quarantined == 3 and queue_depth(rabbit.url, queue) == 0
    assert quarantine.count(dirs["quarantine"]) == 3  # recognised by digest: stored once


def test_item1_importer_sets_out_of_window_samples_aside(tmp_path, dirs):
    src = tmp_path / "old" / "n4"
    src.mkdir(parents=True)
    good = header("n4") + sample(E, "n4") + sample(E + 60, "n4", 1)
    bad = sample("1e20", "n4", 2) + sample(946684799, "n4", 3)
    (src / str(E)).write_text(good + bad + sample(E + 120, "n4", 4))
    res = import_archive(tmp_path / "old", dirs["archive"], dirs["quarantine"])
    # two bad samples: 2 issues (or more where the reader also reports their data lines)
    assert (res.files, res.samples) == (1, 3) and res.issues >= 2
    copy = dirs["archive"] / "n4" / str(E)
    assert copy.read_text() == good + sample(E + 120, "n4", 4)  # never loaded: not copied
    assert [e.time for e in read_index(copy).entries] == [E, E + 60, E + 120]
    (record,) = records(dirs)
    assert record["reason"].startswith("import: ") and "1e20" in record["details"][0]


def test_item8_accounting_lines_are_quarantined_once_per_rematerialisation(hpcperf_env, pg_url):
    from dagster import DagsterInstance, materialize
    from hpcperf_assets.jobs import slurm_jobs

    from hpcperf_dagster.resources import Database, Paths

    folder = hpcperf_env / "accounting"
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "accounting" / "sacct"
    shutil.copytree(fixture, folder)
    for _ in range(3):  # the same day materialised again and again
        result = materialize([slurm_jobs], partition_key="2026-03-19",
                             instance=DagsterInstance.ephemeral(),
                             resources={"db": Database(), "paths": Paths()})
        assert result.success
    assert quarantine.count(hpcperf_env / "quarantine") == 1
