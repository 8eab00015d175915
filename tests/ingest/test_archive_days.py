"""Archive days: the file closes at the first sample after 00:00 UTC, closed
days are gzip-compressed, and every reader takes compressed days as before."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpcperfstats.archive.days import (
    archive_size,
    closed_files,
    compress_day,
    compress_file,
    rotation_name,
)
from hpcperfstats.archive.store import host_files, read_chunks, read_index, read_range
from hpcperfstats.ingest.drain import store_messages
from hpcperfstats.ingest.importer import import_archive

DAY = 86400
D = 1795132800  # 2026-11-20 00:00:00 UTC
HEADER = ("$tacc_stats 2.3.5\n$hostname c1\n$uptime 1000\n"
          "!cpu user,E,U=cs idle,E,U=cs\n!mem MemUsed,U=KB\n")
REAL = Path(__file__).parents[1] / "fixtures" / "real" / "stampede3-c571-001.raw"


def sample(t: int, user: int) -> str:
    return f"{t} - c1\ncpu 0 {user} {10 * user}\nmem - {user * 7}\n"


def messages() -> list[bytes]:
    """Header at 23:50, samples every 5 min across midnight."""
    times = [D - 600 + 300 * k for k in range(5)]  # 23:50 .. 00:10
    out = [(HEADER + sample(times[0], 100)).encode()]
    out += [sample(t, 100 + 10 * k).encode() for k, t in enumerate(times[1:], 1)]
    return out


def store(dirs, bodies):
    return store_messages(bodies, dirs["archive"], dirs["quarantine"])


def all_samples(archive: Path) -> list[tuple[float, dict]]:
    """Every sample archived from two days before D to a week after (the property
    test's steps reach D + 5.5 days; the range's end is exclusive)."""
    out = []
    for raw in read_range(archive, D - 2 * DAY, D + 7 * DAY, 0):
        out += [(s.time, s.rows) for s in raw.samples]
    return sorted(out, key=lambda x: x[0])


def test_rotation_name_by_hand():
    assert rotation_name(D - 600, [D - 300]) is None  # same day
    assert rotation_name(D - 600, [D]) == D  # exactly 00:00 is the new day
    assert rotation_name(D - 600, [D + 300]) == D + 300
    # a message spanning midnight: named at midnight, so the next one does not rotate again
    assert rotation_name(D - 600, [D - 60, D + 60]) == D
    assert rotation_name(D, [D + 120]) is None


def test_first_sample_after_midnight_opens_the_new_days_file(dirs):
    res = store(dirs, messages())
    assert res.quarantined == 0 and res.samples == 5
    files = host_files(dirs["archive"] / "c1")
    assert [e for e, _ in files] == [D - 600, D]
    old, new = (p.read_bytes() for _, p in files)
    # the new file repeats the header, its uptime moved on by the 600 s since
    # the old file's first sample (same boot), then the samples from 00:00 on
    head = HEADER.replace("$uptime 1000", "$uptime 1600")
    assert new == (head + sample(D, 120) + sample(D + 300, 130)
                   + sample(D + 600, 140)).encode()
    assert old == (HEADER + sample(D - 600, 100) + sample(D - 300, 110)).encode()
    index = read_index(files[1][1])
    assert index.header_end == len(head)
    n, s0 = len(head), len(sample(D, 120))
    assert [(e.time, e.start, e.end) for e in index.entries] == [
        (D, n, n + s0), (D + 300, n + s0, n + 2 * s0), (D + 600, n + 2 * s0, n + 3 * s0)]
    # redelivered after the rotation: nothing is written twice
    again = store(dirs, messages()[1:])
    assert again.duplicates == 4 and again.samples == 0
    assert [e for e, _ in host_files(dirs["archive"] / "c1")] == [D - 600, D]
    assert [t for t, _ in all_samples(dirs["archive"])] == [D - 600 + 300 * k for k in range(5)]


def test_late_sample_after_rotation_goes_to_the_open_file(dirs):
    store(dirs, messages())
    store(dirs, [sample(D - 100, 115).encode()])  # 23:58:20, after the day closed
    files = host_files(dirs["archive"] / "c1")
    assert len(files) == 2
    assert sample(D - 100, 115).encode() in files[1][1].read_bytes()
    assert D - 100 in [t for t, _ in all_samples(dirs["archive"])]


def test_compressed_days_read_the_same(dirs):
    store(dirs, messages())
    before = all_samples(dirs["archive"])
    chunks_before = [c.text for c in read_chunks(dirs["archive"], D - 600, D + 600, 3600)]
    closed, still_open = compress_day(dirs["archive"], D - DAY)
    assert [p.name for p in closed] == [f"{D - 600}.gz"] and still_open == []
    # the newest file of a host stays open (the drain appends late samples to it)
    assert compress_day(dirs["archive"], D) == ([], [dirs["archive"] / "c1" / str(D)])
    host = dirs["archive"] / "c1"
    assert sorted(p.name for p in host.iterdir()) == sorted(
        [f"{D - 600}.gz", f"{D - 600}.gz.idx", str(D), f"{D}.idx"])
    assert gzip.decompress((host / f"{D - 600}.gz").read_bytes()).startswith(HEADER.encode())
    assert archive_size(host / f"{D - 600}.gz") == len(HEADER + sample(D - 600, 100)
                                                       + sample(D - 300, 110))
    assert all_samples(dirs["archive"]) == before
    assert [c.text for c in read_chunks(dirs["archive"], D - 600, D + 600, 3600)] == chunks_before
    # the drain goes on beside a compressed day (redelivery still recognised)
    assert store(dirs, messages()[1:]).duplicates == 4
    store(dirs, [sample(D + 900, 150).encode()])
    assert len(all_samples(dirs["archive"])) == 6


def test_crash_inside_compression_keeps_the_plain_file(dirs):
    store(dirs, messages())
    old = dirs["archive"] / "c1" / str(D - 600)
    data = old.read_bytes()
    # a crash after the .gz was written but before the plain file went
    (old.parent / f"{old.name}.gz").write_bytes(gzip.compress(data[:10]))
    assert host_files(old.parent)[0][1] == old  # readers take the plain file
    assert len(all_samples(dirs["archive"])) == 5
    closed, _ = compress_day(dirs["archive"], D - DAY)  # the next run finishes the job
    assert gzip.decompress(closed[0].read_bytes()) == data and not old.exists()
    assert closed_files(dirs["archive"], D - DAY) == ([closed[0]], [])


def test_import_archive_reads_compressed_days(dirs, tmp_path):
    src = tmp_path / "src" / "c1"
    src.mkdir(parents=True)
    text = "".join(m.decode() for m in messages())
    (src / f"{D - 600}.gz").write_bytes(gzip.compress(text.encode()))
    res = import_archive(tmp_path / "src", dirs["archive"], dirs["quarantine"])
    assert res.samples == 5 and res.issues == 0
    assert [t for t, _ in all_samples(dirs["archive"])] == [D - 600 + 300 * k for k in range(5)]


def test_real_fixture_compression_ratio(tmp_path):
    """gzip on the real Stampede3 file: the ratio the closing note reports (4.88 at level 6)."""
    path = tmp_path / "1773864970"
    shutil.copy(REAL, path)
    gz = compress_file(path)
    ratio = REAL.stat().st_size / gz.stat().st_size
    print(f"real fixture: {REAL.stat().st_size} -> {gz.stat().st_size} bytes, ratio {ratio:.2f}")
    assert gzip.decompress(gz.read_bytes()) == REAL.read_bytes()
    assert ratio > 3


@pytest.mark.integration
def test_host_data_rebuilt_from_a_compressed_day_is_the_same(dirs, pg_url):
    """Hour 23:00 of the closed day and hour 00:00 after it (its lookback reaches
    into the compressed file): the same host_data rows before and after."""
    from datetime import UTC, datetime, timedelta

    import psycopg

    from hpcperfstats.hostdata.load import build_host_data

    store(dirs, messages())
    hours = [datetime.fromtimestamp(D - 3600, UTC), datetime.fromtimestamp(D, UTC)]

    def rows() -> list[tuple]:
        with psycopg.connect(pg_url) as conn:
            for h in hours:
                build_host_data(conn, dirs["archive"], h, h + timedelta(hours=1), 3600)
            return conn.execute("SELECT time, host, type, device, event, value, unit"
                                " FROM host_data ORDER BY 1, 3, 4, 5").fetchall()

    before = rows()
    # cpu user by hand at 00:00, the first sample of the new day's file:
    # (120 - 110) cs over 300 s = 0.1 s / 300 s (the rotation is no reboot)
    assert (datetime.fromtimestamp(D, UTC), "c1", "cpu", "", "user", pytest.approx(0.1 / 300),
            "s/s") in before
    compress_day(dirs["archive"], D - DAY)
    assert (dirs["archive"] / "c1" / f"{D - 600}.gz").exists()
    # 5 mem gauges + 4 intervals x (cpu user, idle): the interval across midnight too
    assert rows() == before and len(before) == 5 + 4 * 2


def test_import_never_shadows_a_compressed_day(dirs, tmp_path):
    """An imported file named like a compressed drain file goes beside it."""
    store(dirs, messages())
    compress_day(dirs["archive"], D - DAY)
    src = tmp_path / "src" / "c1"
    src.mkdir(parents=True)
    (src / str(D - 600)).write_text(HEADER + sample(D - 900, 90))
    import_archive(tmp_path / "src", dirs["archive"], dirs["quarantine"])
    names = [p.name for _, p in host_files(dirs["archive"] / "c1")]
    assert names == [f"{D - 600}.gz", str(D - 599), str(D)]
    assert len(all_samples(dirs["archive"])) == 6


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(steps=[0, -1001, 4001], per_message=2)  # a late sample before the boot, then midnight
@example(steps=[15800, 40000, 40000, 40000, 40000], per_message=1)  # ends at D + 2 days
@given(steps=st.lists(st.integers(min_value=-4000, max_value=40000), min_size=1, max_size=12),
       per_message=st.integers(min_value=1, max_value=3))
def test_day_files_property(tmp_path_factory, steps, per_message):
    """Samples at any pace (some late, some days apart), packed 1-3 per message:
    every sample is stored once and read back, no file opens on a day before
    its first sample's, and each newer file starts a later UTC day than the one
    before it (a file is closed by the first sample of a later day only)."""
    root = tmp_path_factory.mktemp("days")
    dirs = {k: root / k for k in ("archive", "quarantine", "state")}
    times, t = [], D - 3000
    for step in steps:
        t += step
        if t not in times:
            times.append(t)
    bodies = [(HEADER + sample(times[0], 1)).encode()]
    rest = times[1:]
    for i in range(0, len(rest), per_message):
        part = sorted(rest[i:i + per_message])
        bodies.append("".join(sample(x, 1 + k) for k, x in enumerate(part)).encode())
    res = store(dirs, bodies)
    assert res.quarantined == 0
    got = [x for x, _ in all_samples(dirs["archive"])]
    assert sorted(got) == sorted(times)  # each once
    files = host_files(dirs["archive"] / "c1")
    days = [e // DAY for e, _ in files]
    assert days == sorted(set(days))
    for epoch, path in files:
        first = read_index(path).entries[0].time
        assert epoch // DAY == first // DAY or epoch >= first  # named by its first sample's day
