"""Issue 17: the host_data fast path gives the reference reader's rows.

The fast path (``long_frame_of_chunks`` -> wide parts -> ``host_rows_of_parts``)
against the reference (``read_raw`` -> ``long_frame`` -> ``host_rows``) on raw
text Hypothesis generates: several hosts and files, counters that roll over
(narrow widths, the kernel's 32-bit tick fields) or go down, reboots, devices
that come and go (a sum with a device missing is left out), excluded devices
(loopback), per-device, unsummed, never-summed and skipped types, control
registers, re-delivered samples, a window and a look-back. Same rows, same
values; floats equal to 1e-12 relative (sums over devices may add in another
order). The real fixture, batched as the benchmark reads it, is checked too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from hpcperf_monitor.rawformat import read_raw
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows, host_rows_of_parts
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
from hpcperfstats.hostdata.types import skipped_types

STAMPEDE_RAW = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "stampede3-c571-001.raw"
KEY = ["host", "time", "type", "device", "event"]
T0 = 1_773_864_000
#: type -> (schema events, devices it may have)
TYPES = {
    "cpu": ("user,E,U=cs system,E,U=cs idle,E,U=cs", ["0", "1", "2"]),
    "net": ("rx_bytes,E,U=B tx_bytes,E,U=B mtu", ["lo", "eth0", "ib0"]),
    "mem": ("MemTotal,U=KB MemUsed,U=KB", ["0", "1"]),
    "block": ("rd_ios,E rd_ticks,E,U=ms in_flight", ["sda"]),
    "ib": ("port_xmit_data,E,U=4B,W=32 port_rcv_pkts,E,W=32", ["mlx5_0.1", "mlx5_1.1"]),
    "nvidia_gpu": ("util,E temperature mem_used,U=B", ["0", "1"]),
    "cgroup": ("cpu_usage,E,U=us mem_current,U=B", ["/job_1", "/job_2"]),
    "proc": ("VmRSS,U=kB Threads", ["a/1/0-1/0", "b/2/0-1/0"]),
    "odd": ("sel,C ctr,E,W=8 g,U=512B big,E,U=2KB", ["x", "y"]),
}
WIDTH = {"ib": 32, "odd": 8}


@st.composite
def host_files(draw) -> tuple[list[Chunk], float, float, float]:
    """Raw files of a few hosts, as chunks, and a window (start, end, since)."""
    types = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=5, unique=True))
    chunks, texts = [], []
    for h in range(draw(st.integers(1, 3))):
        host = f"c{h:03d}-001"
        t, boot_up = T0 + draw(st.integers(0, 59)), draw(st.integers(1000, 10**6))
        state: dict[tuple[str, str, int], int] = {}
        for _file in range(draw(st.integers(1, 2))):
            rebooted = draw(st.booleans())
            if rebooted:
                boot_up, state = draw(st.integers(10, 500)), {}
            header = ["$tacc_stats 2.3.5", f"$hostname {host}", f"$uptime {boot_up}",
                      *(f"!{ty} {TYPES[ty][0]}" for ty in types)]
            lines = header + [""]
            for _k in range(draw(st.integers(1, 5))):
                t += draw(st.sampled_from([300, 600, 0.5, 3600]))
                boot_up += 300
                lines.append(f"{t:.6f} {draw(st.sampled_from(['-', '42', '43']))} {host}")
                for ty in types:
                    spec, devices = TYPES[ty]
                    for dev in draw(st.lists(st.sampled_from(devices), min_size=0,
                                             max_size=len(devices), unique=True)):
                        values = []
                        for i, ev in enumerate(spec.split()):
                            if ",E" in ev:
                                step = draw(st.sampled_from([0, 1, 7, 10**6, -5]))
                                v = state.get((ty, dev, i), draw(st.integers(0, 300)))
                                v = max(v + step, 0) % (2 ** WIDTH.get(ty, 64))
                                state[(ty, dev, i)] = v
                                values.append(str(v))
                            else:
                                values.append(draw(st.sampled_from(["0", "12", "3.5", "65536"])))
                        lines.append(f"{ty} {dev} {' '.join(values)}")
                lines.append("")
            texts.append("\n".join(lines) + "\n")
    if draw(st.booleans()):  # a file delivered twice
        texts.append(texts[draw(st.integers(0, len(texts) - 1))])
    chunks = [Chunk(text, source=f"f{i}") for i, text in enumerate(texts)]
    start = T0 + draw(st.sampled_from([0, 400, 900]))
    end = start + draw(st.sampled_from([600, 1200, 7200]))
    since = start - draw(st.sampled_from([0, 300, 3600]))
    return chunks, start, end, since


def reference(chunks: list[Chunk], start: float | None = None, end: float | None = None,
              since: float | None = None) -> pl.DataFrame:
    samples = [s for c in chunks for s in read_raw(c.text, source=c.source).samples]
    long = long_frame(samples, skipped_types())
    if since is not None:
        long = long.filter(pl.col("time") >= since)
    return host_rows(long, start, end)


def same_rows(fast: pl.DataFrame, ref: pl.DataFrame) -> None:
    """The reference's rows, in key order already (the fast path's final sort
    is by sample only: each type's rows come out in device and event order)."""
    assert fast.select(KEY).equals(fast.select(KEY).sort(KEY))
    assert_frame_equal(fast, ref.sort(KEY), check_exact=False, rel_tol=1e-12)


@given(host_files())
def test_fast_path_rows_equal_the_reference_readers(case):
    chunks, start, end, since = case
    parsed = long_frame_of_chunks(chunks, skipped_types())
    assert not parsed.issues  # generated text is well formed: the fast path read it all
    same_rows(host_rows_of_parts(parsed.parts, start, end, since),
              reference(chunks, start, end, since))
    same_rows(host_rows_of_parts(parsed.parts), reference(chunks))


def test_fast_path_on_the_batched_fixture_equals_the_reference():
    text = STAMPEDE_RAW.read_text()
    chunks = [Chunk(text.replace("c571-001", f"c571-{i:03d}")) for i in range(3)]
    parsed = long_frame_of_chunks(chunks, skipped_types())
    assert parsed.slow_chunks == 0
    fast = host_rows_of_parts(parsed.parts)
    assert fast.height == 3 * 1711  # 16 intervals of each host (worked out in test_rates)
    same_rows(fast, reference(chunks))


def rows_digest(rows: pl.DataFrame) -> str:
    """SHA-256 of rows as returned, bit for bit: each column's nulls, then its
    float bits, microseconds or NUL-joined strings (no polars hash, whose
    seeds may change between versions)."""
    h = hashlib.sha256()
    for name in rows.columns:
        s = rows[name]
        h.update(name.encode())
        h.update(s.is_null().to_numpy().tobytes())
        if s.dtype == pl.Float64:
            h.update(s.fill_null(0.0).to_numpy().tobytes())
        elif s.dtype.is_temporal():
            h.update(s.dt.epoch("us").fill_null(0).to_numpy().tobytes())
        else:
            h.update("\x00".join(s.fill_null("").to_list()).encode())
    return h.hexdigest()


def test_fast_path_rows_on_the_fixture_are_bit_for_bit_those_recorded():
    """The rows of three fixture hosts, whole and in a window with a look-back,
    are exactly those the fast path gave before its issue-17 speed-ups
    (recorded at commit d92a4ce): a faster parser changes no bit, no row, no order."""
    text = STAMPEDE_RAW.read_text()
    chunks = [Chunk(text.replace("c571-001", f"c571-{i:03d}")) for i in range(3)]
    parts = long_frame_of_chunks(chunks, skipped_types()).parts
    whole = host_rows_of_parts(parts)
    window = host_rows_of_parts(parts, T0 + 1000, T0 + 3000, T0)
    assert (whole.height, window.height) == (5133, 2205)
    assert rows_digest(whole) == (
        "27a7e544e828fa13fba2bc59d1bc70f4ffe943f6a6d8ca6387b1db4134f7ae90")
    assert rows_digest(window) == (
        "6010e21b923c4c4a2a18f17b83030295881cc7d7e1d7815396793cc65ef6fa23")
