"""Item 9: memory is bounded per message and per chunk, whatever a file holds.

``HPCPERF_CHUNK_MAX_BYTES`` is set small here (4 KiB) so a 200 KB line plays
the part of the 50 MB one of the issue; ``benchmarks/memory_bound.py``
measures the real size's peak RSS.
"""

from __future__ import annotations

import io

import polars as pl
import psycopg
import pytest
from hpcperf_monitor.rawformat import read_raw

import hpcperfstats.ingest.importer as importer
from hpcperfstats.archive import quarantine
from hpcperfstats.archive.store import read_chunks, read_index
from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.ingest.chunks import Oversized, iter_lines
from hpcperfstats.ingest.drain import store_messages

from .conftest import HOUR, START
from .hostile import E, header, sample

LIMIT = 4096
GIANT = "cpu 0 " + "7" * 200_000 + "\n"  # one line, far over the chunk bound


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setenv("HPCPERF_CHUNK_MAX_BYTES", str(LIMIT))


def damaged_file(samples: int = 200) -> str:
    """One header, ``samples`` samples 15 s apart, a giant line inside the 10th."""
    parts = [header("n5")]
    for k in range(samples):
        text = sample(E + 15 * k, "n5", k)
        parts.append(text.replace("\nmem", "\n" + GIANT + "mem") if k == 10 else text)
    return "".join(parts)


def test_item9_lines_over_the_bound_are_skipped_without_being_held():
    data = b"a 1\n" + GIANT.encode() + b"b 2\nc 3"
    out = list(iter_lines(io.BytesIO(data), LIMIT))
    assert out[0] == (0, b"a 1\n") and out[2:] == [(4 + len(GIANT), b"b 2\n"),
                                                   (8 + len(GIANT), b"c 3")]
    assert out[1] == Oversized(4, len(GIANT), GIANT.encode()[:512])
    # the same when the giant line is the last, unterminated one
    tail = list(iter_lines(io.BytesIO(b"a 1\n" + GIANT.encode().rstrip()), LIMIT))
    assert tail[1] == Oversized(4, len(GIANT) - 1, GIANT.encode()[:512])


def test_item9_drain_caps_message_size(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCPERF_MESSAGE_MAX_BYTES", str(LIMIT))
    big = (header("n5") + sample(E, "n5") + GIANT).encode()
    res = store_messages([big], tmp_path / "a", tmp_path / "q", max_bytes=LIMIT)
    assert res.quarantined == 1 and res.reasons == {"oversized": 1}


def test_item9_import_reads_in_bounded_pieces_and_sets_the_giant_line_aside(
        tmp_path, dirs, monkeypatch):
    src = tmp_path / "old" / "n5"
    src.mkdir(parents=True)
    (src / str(E)).write_text(damaged_file())
    pieces: list[int] = []

    def spy(lines, **kw):  # the reference reader, seeing how much it is given at once
        pieces.append(sum(len(ln.encode()) for ln in lines))  # lines keep their "\n"
        return read_raw(lines, **kw)

    monkeypatch.setattr(importer, "read_raw", spy)
    res = importer.import_archive(tmp_path / "old", dirs["archive"], dirs["quarantine"])
    assert (res.files, res.samples, res.issues) == (1, 200, 1)
    # never the whole file at once: pieces end at a sample, so at most the bound + one sample
    assert len(pieces) > 3 and max(pieces) <= LIMIT + len(sample(E, "n5", 199))
    copy = (dirs["archive"] / "n5" / str(E)).read_text()
    assert copy == damaged_file().replace(GIANT, "")  # the giant line is not in the archive
    assert len(read_index(dirs["archive"] / "n5" / str(E)).entries) == 200
    (record,) = quarantine.list_records(dirs["quarantine"])
    assert "over HPCPERF_CHUNK_MAX_BYTES" in record["details"][0]


@pytest.mark.integration
def test_item9_rebuild_from_a_damaged_unindexed_file_is_chunked(dirs, pg_url):
    host_dir = dirs["archive"] / "n5"
    host_dir.mkdir()
    (host_dir / str(E)).write_text(damaged_file())  # an old file: no index
    skipped: list = []
    chunks = list(read_chunks(dirs["archive"], E, E + 3600, 3600, skipped))
    assert len(chunks) > 3 and max(len(c.text) for c in chunks) <= 2 * LIMIT
    assert len(skipped) == 1 and "over HPCPERF_CHUNK_MAX_BYTES" in skipped[0].reason
    with psycopg.connect(pg_url) as conn:
        load = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        got = conn.execute("SELECT count(*), count(DISTINCT time) FROM host_data").fetchone()
    clean = read_raw(damaged_file().replace(GIANT, ""))
    expected = host_rows(long_frame(clean.samples), START.timestamp(),
                         (START + HOUR).timestamp())
    assert got == (expected.height, 200) and load.samples_unloaded == 0
    assert expected.filter(pl.col("type") == "cpu").height > 0
