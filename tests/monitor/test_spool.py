"""The spool keeps order, survives restarts and stays within its bound."""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.rawformat import read_raw
from hpcperf_monitor.spool import Spool, header_part

HEADER = b"$tacc_stats 2.3.5\n$hostname n1\n!ps ctxt,E\n\n"


def body(seq: int, header: bool = False) -> bytes:
    return (HEADER if header else b"") + f"{1000 + seq} - n1\n%seq {seq}\nps - {seq}\n\n".encode()


def test_order_is_sequence_order(tmp_path: Path):
    spool = Spool(tmp_path)
    for seq in (9, 10, 8):  # numeric, not text, order: 10 after 9
        spool.put(seq, body(seq))
    assert [p.read_bytes() for p in spool.pending()] == [body(8), body(9), body(10)]
    assert [p.read_bytes() for p in Spool(tmp_path).pending()][0] == body(8)  # after restart


def test_header_part():
    assert header_part(body(1, header=True)) == HEADER
    assert header_part(body(1)) == b""


def test_eviction_oldest_first_keeps_header(tmp_path: Path):
    size = len(body(1))
    spool = Spool(tmp_path, max_bytes=len(HEADER) + 3 * size)
    spool.put(1, body(1, header=True))
    spool.put(2, body(2))
    spool.put(3, body(3))
    assert spool.evicted == 0
    spool.put(4, body(4))  # over the bound by one message: 1 goes, its header moves to 2
    spool.put(5, body(5))  # 2 goes (with the header), the header moves to 3
    texts = [p.read_bytes() for p in spool.pending()]
    assert texts == [HEADER + body(3), body(4), body(5)]
    assert spool.evicted == 2
    raw = read_raw(b"".join(texts).decode())
    assert raw.issues == [] and [s.seq for s in raw.samples] == [3, 4, 5]


def test_newest_message_is_never_evicted(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=10)
    spool.put(1, body(1))
    spool.put(2, body(2))
    assert [p.read_bytes() for p in spool.pending()] == [body(2)]
    assert spool.evicted == 1
