"""Issue 12: hostile mutations of the real Stampede3 file never split the two readers.

Random truncations, byte flips, deleted, repeated and swapped lines and
spliced garbage (form feeds, NEL, U+2028, NUL, other scripts' digits, huge
exponents, stray headers and marks) are read by the reference reader
(``read_raw`` + ``long_frame``) and by the vectorised path of ``host_data``
(``long_frame_of_chunks``): same rows, same reported lines, and neither raises.
Hypothesis runs the ``ci`` profile's fixed budget (tests/conftest.py); each
test keeps its CI run to well under 30 s on a busy machine.
"""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
from hpcperf_monitor.rawformat import boot_time, read_raw
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
from hpcperfstats.hostdata.types import skipped_types

STAMPEDE_RAW = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "stampede3-c571-001.raw"
KEY = ["host", "time", "type", "device", "event"]
TEXT = STAMPEDE_RAW.read_text()
# the header block, then 17 samples, each opened by a blank line
HEADER, *SAMPLES = TEXT.split("\n\n")
HEADER += "\n\n"
SAMPLES = [s + "\n\n" for s in SAMPLES]

GARBAGE = [
    "\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u2029", "\x00", "\r", "\r\n", "\t", " ", "  ",
    "\n", "\n\n", "٨٠٥١٢٣٣", "８", "²", "8_051_233", "1e20", "1e999", "-1e-999", "inf", "nan",
    "+1", ".5", "5.", "9" * 320, "-", "#", "$", "!", "@", "%", "\n@fast\n", "\n@full\n",
    "\n$hostname c571-001\n", "\n$uptime 1e3\n", "\n!cpu user,E\n", "\n%begin 1\n",
    "\n1773864970 - c571-001\n", "\n1e20 - c571-001\n", "\n1773865000 2946877\n",
    "\ncpu 0 1 2 3 4 5 6 7\n", "\ufeff", "\udcff", "é", "İ", "ß",
]
garbage = st.one_of(st.sampled_from(GARBAGE), st.text(max_size=8))


def _flip(text: str, pos: int, bit: int) -> str:
    data = bytearray(text.encode())
    if data:
        data[pos % len(data)] ^= 1 << bit
    return data.decode("utf-8", errors="replace")


def _lines(text: str, op: str, i: int, j: int) -> str:
    lines = text.split("\n")
    i, j = i % len(lines), j % len(lines)
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _splice(text: str, pos: int, junk: str) -> str:
    pos %= len(text) + 1
    return text[:pos] + junk.replace("\udcff", "\ufffd") + text[pos:]


positions = st.integers(0, 10**6)
mutation = st.one_of(
    st.tuples(st.just("truncate"), positions),
    st.tuples(st.just("flip"), positions, st.integers(0, 7)),
    st.tuples(st.sampled_from(["delete", "duplicate", "swap"]), positions, positions),
    st.tuples(st.just("splice"), positions, garbage),
)


def mutate(text: str, ops: list[tuple]) -> str:
    for op, *args in ops:
        if op == "truncate":
            text = text[: args[0] % (len(text) + 1)]
        elif op == "flip":
            text = _flip(text, *args)
        elif op == "splice":
            text = _splice(text, *args)
        else:
            text = _lines(text, op, *args)
    return text


def agree(chunks: list[Chunk], skip: frozenset[str] = frozenset()
          ) -> tuple[pl.DataFrame, list[tuple[str, int, str]]]:
    """Both readers over ``chunks``: equal rows and equal issues, or the test fails.

    ``skip``: types left out of the rows (as host_data leaves out ``proc``),
    whose bad lines must be reported all the same.
    """
    samples, ref_issues = [], []
    for c in chunks:
        raw = read_raw(c.text, source=c.source, header=copy.copy(c.header))
        samples += raw.samples
        ref_issues += [(i.source, i.line, i.reason) for i in raw.issues]
    ref = long_frame(samples, skip).sort(KEY)
    fast = long_frame_of_chunks(chunks, skip)
    assert_frame_equal(fast.frame.sort(KEY), ref)
    assert sorted((i.source, i.line, i.reason) for i in fast.issues) == sorted(ref_issues)
    return ref, ref_issues


# cases Hypothesis found while the readers were made to agree, kept as regressions
@example(first=0, ops=[("splice", 440, "9" * 320)])  # a 320-digit U= multiplier
@given(first=st.integers(0, len(SAMPLES) - 2), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_file_reads_the_same_in_both_readers(first, ops):
    text = mutate(HEADER + SAMPLES[first] + SAMPLES[first + 1], ops)
    agree([Chunk(text, source="file")])


@example(first=0, ops=[("truncate", 255), ("duplicate", 0, 0)])  # a torn repeated sample
@example(first=0, ops=[("flip", 49, 0)])  # a '/' in the host name
@example(first=0, ops=[("truncate", 0), ("splice", 25, "\n1773864970 - c571-001\n")])  # empty copy
@example(first=0, ops=[("splice", 25407, "9" * 320)])  # a huge number in a skipped type
@given(first=st.integers(0, len(SAMPLES) - 3), ops=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_messages_continuing_a_header_read_the_same(first, ops):
    """Archive slices: messages without a header, read with their file's header."""
    raw = read_raw(HEADER + SAMPLES[0])
    header = raw.headers[0]
    boot = boot_time(header)
    chunks = [Chunk(mutate(SAMPLES[first + k], ops[k:]), header, boot, source=f"m{k}")
              for k in range(3)]
    agree(chunks, skipped_types())


@settings(max_examples=40)
@given(cut=st.integers(0, len(TEXT.encode())))
def test_whole_file_truncated_at_any_byte(cut):
    """A file torn at any byte: what is complete loads, the torn line is reported."""
    text = TEXT.encode()[:cut].decode("utf-8", errors="ignore")
    frame, issues = agree([Chunk(text, source="torn")])
    complete = text.count("\n\n")  # samples followed by the next one's blank line
    assert frame["time"].n_unique() >= max(complete - 1, 0)
    assert all(line == text.count("\n") + 1 for _, line, _ in issues)  # only the last line


def test_each_kind_of_garbage_alone_keeps_both_readers_together():
    """Every garbage string, spliced into a data line, a record line and a header."""
    base = HEADER + SAMPLES[0] + SAMPLES[1]
    record = base.index("1773864970.470903")
    data = base.index("cpu 0 ")
    for junk in GARBAGE:
        for pos in (record + 3, data + 8, base.index("$uptime") + 9, len(HEADER) - 1):
            agree([Chunk(_splice(base, pos, junk), source="g")])
