"""Issue 12, reader half: one line definition, an ASCII grammar, the C monitor's header.

Every case is read by both readers of the raw format, ``rawformat.read_raw``
(the reference) and ``textframe.long_frame_of_chunks`` (the vectorised path
of ``host_data``), and both must give the same rows and the same issues.
"""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest
from hpcperf_monitor.rawformat import (
    EPOCH_EARLIEST,
    EPOCH_MAX,
    MAX_LINE,
    Header,
    boot_time,
    epoch_in_window,
    parse_epoch,
    parse_number,
    read_raw,
    split_lines,
    window_issues,
    write_raw,
)
from polars.testing import assert_frame_equal

from hpcperfstats.config import settings
from hpcperfstats.hostdata.frames import event_meta, long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks

C_MONITOR = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "tacc-c-monitor-2.3.5"
KEY = ["host", "time", "type", "device", "event"]
HEAD = "$tacc_stats 2.3.5\n$hostname c1\n$uptime 1000\n!cpu user,E,U=cs idle,E,U=cs\n"


def both(text: str, header: Header | None = None) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Rows and issues of ``text``; asserts the two readers agree on both."""
    raw = read_raw(text, source="t", header=copy.copy(header))
    ref = long_frame(raw.samples).sort(KEY)
    boot = boot_time(header) if header is not None else None
    fast = long_frame_of_chunks([Chunk(text, header, boot=boot, source="t")])
    assert_frame_equal(fast.frame.sort(KEY), ref)
    issues = [(i.line, i.reason) for i in raw.issues]
    assert [(i.line, i.reason) for i in fast.issues] == issues
    return ref, issues


def cpu0(frame: pl.DataFrame) -> list[tuple[float, float]]:
    """(time, user) of device 0, in time order."""
    sel = frame.filter((pl.col("device") == "0") & (pl.col("event") == "user")).sort("time")
    return list(zip(sel["time"], sel["raw"], strict=True))


# --- item 6 -----------------------------------------------------------------------------

BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", BREAKS, ids=lambda c: f"U+{ord(c):04X}")
def test_item6_one_line_definition_in_both_readers(char):
    """``str.splitlines`` breaks at these; the grammar does not: still one (bad) line."""
    text = HEAD + f"100 - c1\ncpu 0 10 20{char}cpu 1 30 40\ncpu 2 50 60\n200 - c1\ncpu 0 11 21\n"
    assert split_lines(text)[5] == f"cpu 0 10 20{char}cpu 1 30 40"
    frame, issues = both(text)
    # line 6 is one data line with a bad value, not two good lines
    assert issues == [(6, "cpu expects 2 values, got 5")] or issues == [
        (6, f"bad value: not a plain decimal number: {('20' + char + 'cpu')!r}")]
    assert sorted(frame.filter(pl.col("time") == 100)["device"].unique()) == ["2"]
    assert cpu0(frame) == [(200.0, 11.0)]


def test_item6_break_inside_a_record_line_and_crlf():
    text = HEAD + "100 - c1\u2028\ncpu 0 1 2\n" + "200 - c1\r\ncpu 0 3 4\r\n"
    frame, issues = both(text)
    # the host field is "c1\u2028", not "c1": a bad record line, its data line lost
    assert issues == [(5, "record line host or job id is malformed (host: up to 253 letters, "
                          "digits, '.', '-', '_'; job id: up to 128 printable ASCII)"),
                      (6, "data line outside a sample")]
    assert cpu0(frame) == [(200.0, 3.0)]  # \r\n lines read as \n lines
    crlf = (HEAD + "100 - c1\ncpu 0 1 2\n").replace("\n", "\r\n")
    (frame, issues), (lf_frame, lf_issues) = both(crlf), both(crlf.replace("\r\n", "\n"))
    assert issues == lf_issues == [] and frame.height == 2
    assert_frame_equal(frame, lf_frame)


def test_item6_line_numbers_count_only_newlines():
    text = HEAD + "100 - c1\ncpu 0 1\x0c2\n\x85\ncpu 1 1 x\n"
    _, issues = both(text)
    assert [line for line, _ in issues] == [6, 7, 8]
    assert split_lines("a\r\nb\n\nc\rd") == ["a", "b", "", "c\rd"]
    assert split_lines("") == [] and split_lines("\n") == [""]


# --- item 7 -----------------------------------------------------------------------------

BAD_VALUES = ["٨٠٥١٢٣٣", "8_051_233", "1e20", "1e999", "1E5", "inf", "-inf", "nan", "NaN",
              "Infinity", "+1", ".5", "5.", "0x10", "１", "²", "1\xa02", "9" * 400, "--1", "-"]


@pytest.mark.parametrize("value", BAD_VALUES, ids=range(len(BAD_VALUES)))
def test_item7_ascii_numbers_only_in_both_readers(value):
    text = HEAD + f"100 - c1\ncpu 0 {value} 5\ncpu 1 7 8\n"
    frame, issues = both(text)
    assert len(issues) == 1 and issues[0][0] == 6
    assert issues[0][1].startswith("bad value: ")
    assert frame["device"].unique().to_list() == ["1"]  # the good line still loads
    with pytest.raises(ValueError):
        parse_number(value)


BAD_EPOCHS = ["1e20", "1e999", "inf", "nan", "8_051_233", "1773864970.", "1773864970.5e3",
              "1" * 13, "253402300800", "٨٠٥١٢٣٣", "0x10", "1773864970,5"]


@pytest.mark.parametrize("epoch", BAD_EPOCHS, ids=range(len(BAD_EPOCHS)))
def test_item7_ascii_epochs_only_in_both_readers(epoch):
    text = HEAD + f"100 - c1\ncpu 0 1 2\n{epoch} - c1\ncpu 0 3 4\n300 - c1\ncpu 0 5 6\n"
    frame, issues = both(text)
    expected = "record line epoch is not a plain decimal number of seconds up to 9999-12-31"
    if epoch[0] in "0123456789":
        assert issues == [(7, expected), (8, "data line outside a sample")]
    else:  # not a record line: a data line of an unknown type, and the next
        # data line falls into the sample before it, where cpu 0 was already given
        assert issues[0][0] == 7 and "has no schema" in issues[0][1]
        assert issues[1] == (8, "duplicate device '0' for cpu in one sample")
    assert cpu0(frame) == [(100.0, 1.0), (300.0, 5.0)]
    assert parse_epoch(epoch) is None


def test_item7_good_numbers_keep_their_exact_values():
    assert parse_epoch("1773864970.470903") == 1773864970.470903
    assert parse_epoch("0") == 0.0 and parse_epoch(str(int(EPOCH_MAX))) == EPOCH_MAX
    assert parse_number("18446744073709551615") == 2**64 - 1  # a 64-bit counter, exact
    assert parse_number("-0.25") == -0.25 and parse_number("007") == 7
    text = HEAD + "1773864970.470903 - c1\ncpu 0 18446744073709551615 -3.5\n"
    frame, issues = both(text)
    assert issues == [] and sorted(frame["raw"].to_list()) == [-3.5, 2.0**64]


def test_item7_epoch_window_helper_and_settings(monkeypatch):
    received = 1_800_000_000.0
    assert EPOCH_EARLIEST == 946684800.0  # 2000-01-01T00:00:00Z
    assert epoch_in_window(received - 86400 * 365, received) is None  # a year-old spool
    assert epoch_in_window(received + 86400, received) is None
    assert "outside the sane window" in epoch_in_window(received + 86401, received)
    assert epoch_in_window(EPOCH_EARLIEST - 1, received) is not None
    assert epoch_in_window(100.0, received, earliest=0.0) is None
    assert epoch_in_window(received + 600, received, max_ahead_s=60) is not None
    raw = read_raw(HEAD + f"{received:.0f} - c1\ncpu 0 1 2\n{received + 2e6:.0f} - c1\n",
                   source="m")
    issues = window_issues(raw, received, source="m")
    assert [(i.source, i.line) for i in issues] == [("m", 7)]
    cfg = settings()
    assert (cfg.epoch_earliest, cfg.epoch_max_ahead_s) == (EPOCH_EARLIEST, 86400.0)
    monkeypatch.setenv("HPCPERF_EPOCH_EARLIEST", "2020-01-01")
    monkeypatch.setenv("HPCPERF_EPOCH_MAX_AHEAD_S", "60")
    cfg = settings()
    assert (cfg.epoch_earliest, cfg.epoch_max_ahead_s) == (1577836800.0, 60.0)


def test_item7_reading_an_archived_file_does_not_check_the_clock():
    """An old import (1999) or a file from a node with a wrong clock still reads."""
    text = HEAD + "915148800 - c1\ncpu 0 1 2\n4102444800 - c1\ncpu 0 3 4\n"
    frame, issues = both(text)
    assert issues == [] and [t for t, _ in cpu0(frame)] == [915148800.0, 4102444800.0]


def test_item7_schema_and_header_numbers_are_ascii():
    text = ("$hostname c1\n$uptime 1e3\n!cpu user,E,W=٣٢\n!mem a,U=٥0B\n!net a,E,W=3_2\n"
            "!blk a,E,W=32\n100 - c1\nblk 0 1\n")
    raw = read_raw(text)
    assert [i.line for i in raw.issues] == [2, 3, 5]
    # U=٥0B: no ASCII multiplier, so the unit is the text "٥0B" as written
    assert raw.headers[0].schemas["mem"].events[0].multiplier == 1
    assert raw.headers[0].uptime is None and "uptime" not in raw.headers[0].properties
    assert raw.headers[0].schemas["blk"].events[0].width == 32
    seq = read_raw(HEAD + "100 - c1\n%seq ١٧\n").samples[0]
    assert seq.seq is None


def test_item7_writer_writes_only_what_the_reader_reads():
    raw = read_raw(HEAD + "100 - c1\ncpu 0 1 2\n")
    raw.samples[0].rows["cpu"]["0"] = (1e-05, 1e16)
    text = write_raw(raw)
    assert "cpu 0 0.00001 10000000000000000\n" in text
    again = read_raw(text)
    assert again.issues == [] and again.samples[0].rows["cpu"]["0"] == (1e-05, 1e16)


# --- item 12, reader part ------------------------------------------------------------------


def c_monitor_text() -> str:
    return "".join((C_MONITOR / f"msg0{i}.txt").read_text() for i in range(1, 7))


def test_item12_c_monitor_header_key_is_accepted():
    first = (C_MONITOR / "msg01.txt").read_text()
    assert first.startswith("$hpcperfstats 2.3.5\n")
    raw = read_raw(c_monitor_text())
    assert raw.issues == [] and len(raw.headers) == 1 and len(raw.samples) == 6
    assert raw.headers[0].monitor_version == "2.3.5"
    ours = read_raw(first.replace("$hpcperfstats", "$tacc_stats", 1))
    assert ours.headers[0].monitor_version == "2.3.5"
    frame, issues = both(c_monitor_text())
    assert issues == [] and frame["host"].unique().to_list() == ["vm"]


def test_item12_c_monitor_cpu_rates_are_the_readme_ground_truth():
    rows = host_rows(long_frame(read_raw(c_monitor_text()).samples))
    busy = (rows.filter((pl.col("type") == "cpu") & pl.col("event").is_in(["user", "system"]))
            .group_by("time").agg(pl.col("value").sum()).sort("time"))
    # README.md of the fixture: user+system jiffies of both CPUs / 100 / interval
    assert busy["value"].round(6).to_list() == [0.018003, 0.029961, 1.010779, 0.737061,
                                                0.026621]


def test_item12_kernel_widths_apply_where_the_schema_declares_none():
    header = read_raw(c_monitor_text()).headers[0]
    block = header.schemas["block"]
    assert all(e.width is None for e in block.events)
    widths = dict(event_meta(block).select("event", "width").iter_rows())
    assert {e for e, w in widths.items() if w == 32} == {
        "rd_ticks", "wr_ticks", "io_ticks", "time_in_queue"}
    assert widths["rd_sectors"] == 64 and widths["rd_ios"] == 64
    cpu = dict(event_meta(header.schemas["cpu"]).select("event", "width").iter_rows())
    assert set(cpu.values()) == {64}


@pytest.mark.parametrize(("schema_width", "rate"), [("", 0.15), (",W=32", 0.15), (",W=64", None)])
def test_item12_diskstats_ticks_wrap_at_32_bits(schema_width, rate):
    """io_ticks 2^32 - 1000 -> 500 ms in 10 s: 1500 ms of I/O, 0.15 s/s (by hand)."""
    text = (f"$hostname c1\n!block rd_ios,E io_ticks,E,U=ms{schema_width}\n"
            f"100 - c1\nblock vda 5 {2**32 - 1000}\n110 - c1\nblock vda 6 500\n")
    frame, issues = both(text)
    assert issues == []
    rows = host_rows(frame).filter(pl.col("event") == "io_ticks")
    assert rows["value"].to_list() == ([] if rate is None else [pytest.approx(rate)])


# --- a giant line ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["data", "record", "mark", "header"])
def test_a_line_over_max_line_is_reported_unread_and_the_rest_loads(where):
    """A 2 MiB line: reported (its first 200 characters), never split into tokens;
    the fast path hands the chunk to read_raw rather than copying it through polars
    (peak memory: ``python -m benchmarks.giant_line``)."""
    giant = {"data": "cpu 1 " + "1 " * MAX_LINE, "record": "200 - " + "c" * 2 * MAX_LINE,
             "mark": "%" + "m" * 2 * MAX_LINE, "header": "$uname " + "x" * 2 * MAX_LINE}[where]
    text = HEAD + "100 - c1\ncpu 0 1 2\n" + giant + "\ncpu 2 3 4\n300 - c1\ncpu 0 5 6\n"
    frame, issues = both(text)
    assert issues[0][0] == 7 and issues[0][1].startswith("line of ")
    parsed = long_frame_of_chunks([Chunk(text)])
    assert parsed.slow_chunks == 1 and len(parsed.issues[0].text) == 203
    if where == "record":  # its data line has no sample
        assert issues[1:] == [(8, "data line outside a sample")]
        assert sorted(frame["device"].unique()) == ["0"]
    else:  # cpu 2 belongs to the sample of line 5
        assert issues[1:] == [] and sorted(frame["device"].unique()) == ["0", "2"]
    assert cpu0(frame) == [(100.0, 1.0), (300.0, 5.0)]


# --- duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["torn first", "whole first", "one text"])
def test_a_torn_copy_never_beats_the_whole_sample_in_either_reader(order):
    """A sample torn at a line boundary, then delivered again whole (issue 12 item 4's
    de-duplication rule, in both readers): the whole copy's three rows load."""
    whole = "100 - c1\ncpu 0 1 2\ncpu 1 3 4\ncpu 2 5 6\n"
    torn = "100 - c1\ncpu 0 1 2\n"
    header = read_raw(HEAD).headers[0]
    texts = {"torn first": [torn, whole], "whole first": [whole, torn],
             "one text": [torn + whole]}[order]
    chunks = [Chunk(t, header, boot_time(header), source=f"m{i}") for i, t in enumerate(texts)]
    samples = [s for c in chunks for s in read_raw(c.text, header=copy.copy(header)).samples]
    ref = long_frame(samples)
    fast = long_frame_of_chunks(chunks).frame
    assert_frame_equal(fast.sort(KEY), ref.sort(KEY))
    assert sorted(ref.filter(pl.col("event") == "user")["raw"].to_list()) == [1.0, 3.0, 5.0]
    # equal copies: the first read wins (a re-delivered message changes nothing)
    again = long_frame_of_chunks([Chunk(whole, header, source="a"),
                                  Chunk(whole.replace(" 5 6", " 7 8"), header, source="b")])
    assert sorted(again.frame.filter(pl.col("event") == "user")["raw"].to_list()) == [1, 3, 5]
