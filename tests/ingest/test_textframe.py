"""The vectorised text reader gives exactly the reference reader's frame."""

from __future__ import annotations

import polars as pl
from hpcperf_monitor.rawformat import read_raw
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks

from .conftest import demo_bodies

KEY = ["host", "time", "type", "device", "event"]


def reference(texts: list[str]) -> pl.DataFrame:
    return long_frame([s for t in texts for s in read_raw(t).samples]).sort(KEY)


def test_real_fixture_matches_the_reference(stampede_text):
    texts = [stampede_text, stampede_text.replace("c571-001", "c571-002")]
    parsed = long_frame_of_chunks([Chunk(t) for t in texts])
    assert parsed.slow_chunks == 0 and parsed.issues == []
    assert_frame_equal(parsed.frame.sort(KEY), reference(texts))
    assert parsed.samples_in.height == 34


def test_rotation_header_mid_text_and_duplicates_across_chunks():
    bodies = [b.decode() for b in demo_bodies(nodes=1, hours=1)]
    rotated = bodies[0].split("\n\n", 1)[0] + "\n\n"  # the header alone
    text = "".join(bodies[:6]) + rotated + "".join(bodies[6:])
    again = bodies[0] + bodies[3]  # re-delivered: header + a sample already read
    parsed = long_frame_of_chunks([Chunk(text), Chunk(again)])
    assert parsed.slow_chunks == 0
    assert_frame_equal(parsed.frame.sort(KEY), reference([text]))


def test_continued_slice_and_bad_lines_go_to_the_reference_reader():
    bodies = [b.decode() for b in demo_bodies(nodes=1, hours=1)]
    header = read_raw(bodies[0]).headers[0]
    slice_ = "".join(bodies[1:4])
    broken = bodies[4].replace("\nvm - ", "\nvm - x ", 1)  # one value too many
    parsed = long_frame_of_chunks([Chunk(bodies[0]), Chunk(slice_, header, source="s"),
                                   Chunk(broken, header, source="b")])
    assert parsed.slow_chunks == 1
    assert [(i.source, i.reason) for i in parsed.issues] == [("b", "vm expects 6 values, got 7")]
    # all samples of the good chunks, and the broken one without its vm line
    assert parsed.samples_in.height == 5
    vm = parsed.frame.filter(pl.col("type") == "vm")["time"].unique()
    assert vm.len() == 4


@given(st.lists(st.text(alphabet="abcXYZ019.- \t", max_size=20), max_size=20))
def test_vectorised_short_host_is_short_host(names):
    """The fast reader's host rule is the accounting join's rule (host-name alphabet)."""
    from hpcperfstats.jobs.accounting import short_host, short_host_expr

    got = pl.DataFrame({"n": names}, schema={"n": pl.Utf8}).select(
        short_host_expr(pl.col("n")))["n"].to_list()
    assert got == [short_host(n) for n in names]
