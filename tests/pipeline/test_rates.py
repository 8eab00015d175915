"""Rates from counters: fixture values by hand, roll-over, reboots, gauges."""

from __future__ import annotations

import polars as pl
import pytest
from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.series import derive_series

DT1 = 1773865196.714527 - 1773864970.470903  # 226.243624 s


def rows_of(text: str) -> pl.DataFrame:
    raw = read_raw(text)
    assert raw.issues == []
    return host_rows(long_frame(raw.samples))


def value(rows: pl.DataFrame, type_: str, event: str, index: int = 0) -> float:
    sel = rows.filter((pl.col("type") == type_) & (pl.col("event") == event)).sort("time")
    return sel["value"][index]


@pytest.fixture(scope="module")
def stampede_rows(stampede_text):
    return host_rows(long_frame(read_raw(stampede_text).samples))


def test_fixture_cpu_rates_are_cores(stampede_rows):
    # awk: user jiffies over 128 CPUs 484536059 -> 484733506 (+197447 cs)
    assert value(stampede_rows, "cpu", "user") == pytest.approx(1974.47 / DT1, rel=1e-9)
    # awk: idle +2689131 cs
    assert value(stampede_rows, "cpu", "idle") == pytest.approx(26891.31 / DT1, rel=1e-9)
    row = stampede_rows.filter(pl.col("type") == "cpu").row(0, named=True)
    assert (row["host"], row["jobid"], row["device"], row["unit"]) == (
        "c571-001", "2946877", "", "s/s")
    # every interval of the node adds up to its 128 CPUs
    per_time = (stampede_rows.filter(pl.col("type") == "cpu")
                .group_by("time").agg(pl.col("value").sum()))
    assert per_time.height == 16
    assert per_time["value"].min() > 127.9 and per_time["value"].max() < 128.1


def test_fixture_memory_and_network(stampede_rows):
    # awk: MemUsed 77921264 KB, FilePages 5334684 KB, Slab 8161656 KB in sample 1
    assert value(stampede_rows, "mem", "MemUsed") == 77921264 * 1024
    series = derive_series(stampede_rows, ["mem_used", "net_bw", "block_bw"])
    mem = series.filter(pl.col("series") == "mem_used").sort("time")
    assert mem["value"][0] == (77921264 - 5334684 - 8161656) * 1024
    net = series.filter(pl.col("series") == "net_bw").sort("time")
    # awk: rx+tx bytes of every interface but lo grew by 90312913 bytes
    assert net["value"][0] == pytest.approx(90312913 / DT1, rel=1e-9)
    blk = series.filter(pl.col("series") == "block_bw").sort("time")
    assert blk["unit"][0] == "B/s"
    # 16 rate points, 17 gauge points: the first sample has nothing to difference
    assert (net.height, mem.height) == (16, 17)


def test_proc_rows_are_not_host_data(stampede_rows):
    assert "proc" not in stampede_rows["type"].unique().to_list()


HEADER = "$tacc_stats 2.3.5\n$hostname n1\n$uptime {up}\n!ib rx,E,U=4B,W={w} st\n"


# ``ib`` keeps per-port rows beside the host sum: read the port's
RX = (pl.col("event") == "rx") & (pl.col("device") == "port1")
ST = (pl.col("event") == "st") & (pl.col("device") == "port1")


def sample(t: float, rx: int, st: int = 1) -> str:
    return f"{t} 7 n1\nib port1 {rx} {st}\n"


@pytest.mark.parametrize("width", [32, 48])
def test_counter_wrap_by_declared_width(width):
    top = 2**width
    text = HEADER.format(up=1000, w=width) + sample(100, top - 100) + sample(200, 50)
    rows = rows_of(text)
    # 150 four-byte words in 100 s after rolling over
    assert value(rows, "ib", "rx") == pytest.approx(150 * 4 / 100)
    assert rows.filter(RX)["delta"][0] == 600


def test_64bit_counter_going_down_is_a_reset_not_a_rate():
    text = HEADER.format(up=1000, w=64) + sample(100, 5000) + sample(200, 10) + sample(300, 110)
    rx = rows_of(text).filter(RX).sort("time")
    assert rx["time"].dt.epoch("s").to_list() == [300]
    assert rx["value"].to_list() == [pytest.approx(4.0)]


def test_reboot_starts_a_new_series_even_for_narrow_counters():
    before = HEADER.format(up=1000, w=32) + sample(100, 5000) + sample(200, 6000)
    # new header: uptime 50 s at t=400 -> booted at 350, not at -900
    after = HEADER.format(up=50, w=32) + sample(400, 100) + sample(500, 300)
    rx = rows_of(before + after).filter(RX).sort("time")
    assert rx["time"].dt.epoch("s").to_list() == [200, 500]
    assert rx["value"].to_list() == [pytest.approx(40.0), pytest.approx(8.0)]


def test_daily_rotation_header_keeps_the_series_going():
    first = HEADER.format(up=1000, w=64) + sample(100, 1000)
    rotated = HEADER.format(up=1100, w=64) + sample(200, 2000)  # same boot
    rx = rows_of(first + rotated).filter(RX)
    assert rx["value"].to_list() == [pytest.approx(40.0)]


def test_gauges_are_kept_as_is_and_duplicates_dropped():
    text = HEADER.format(up=10, w=64) + sample(100, 1, st=3) + sample(100, 1, st=3) + sample(
        200, 2, st=4)
    st = rows_of(text).filter(ST).sort("time")
    assert st["value"].to_list() == [3.0, 4.0]
    assert st["delta"].to_list() == [None, None]
    assert st["unit"].to_list() == ["", ""]


def test_window_uses_lookback_but_returns_only_its_rows():
    text = HEADER.format(up=10, w=64) + sample(3500, 0) + sample(3700, 400) + sample(3900, 800)
    raw = read_raw(text)
    rows = host_rows(long_frame(raw.samples), 3600, 7200)
    rx = rows.filter(RX)
    assert rx["time"].dt.epoch("s").to_list() == [3700, 3900]
    assert rx["value"].to_list() == [pytest.approx(8.0), pytest.approx(8.0)]


def test_sum_over_devices_needs_every_device():
    text = ("$hostname n1\n$uptime 10\n!net rx_bytes,E,U=B\n"
            "100 - n1\nnet eth0 0\nnet lo 0\n"
            "200 - n1\nnet eth0 100\nnet ib0 7\nnet lo 999\n"
            "300 - n1\nnet eth0 200\nnet ib0 107\nnet lo 1999\n")
    rx = rows_of(text).sort("time")
    # t=200: ib0 has no predecessor -> no partial sum; loopback never counts
    assert rx["time"].dt.epoch("s").to_list() == [300]
    assert rx["value"].to_list() == [pytest.approx(2.0)]


def test_gpus_and_ports_get_host_sums_and_device_rows_jobs_only_their_own():
    text = ("$hostname g1\n$uptime 10\n"
            "!nvidia_gpu utilization,U=% power,U=mW temperature\n"
            "!cgroup cpu_usage,E,U=us mem_current,U=B\n"
            "100 - g1\nnvidia_gpu 0 50 200000 60\nnvidia_gpu 1 30 100000 70\n"
            "cgroup 11 0 5\ncgroup 12 0 7\n"
            "200 - g1\nnvidia_gpu 0 90 300000 61\nnvidia_gpu 1 10 100000 71\n"
            "cgroup 11 100000000 5\ncgroup 12 50000000 9\n")
    rows = rows_of(text).filter(pl.col("time").dt.epoch("s") == 200)
    got = {(r["type"], r["device"], r["event"]): (r["value"], r["unit"])
           for r in rows.iter_rows(named=True)}
    assert got == {
        # GPU-% busy and watts summed over both GPUs, and kept per GPU
        ("nvidia_gpu", "", "utilization"): (100.0, "%"),
        ("nvidia_gpu", "", "power"): (pytest.approx(400.0), "W"),
        ("nvidia_gpu", "0", "utilization"): (90.0, "%"),
        ("nvidia_gpu", "1", "utilization"): (10.0, "%"),
        ("nvidia_gpu", "0", "power"): (pytest.approx(300.0), "W"),
        ("nvidia_gpu", "1", "power"): (pytest.approx(100.0), "W"),
        # temperatures only per GPU: a sum of them means nothing
        ("nvidia_gpu", "0", "temperature"): (61.0, ""),
        ("nvidia_gpu", "1", "temperature"): (71.0, ""),
        # each job its own: 100 s of CPU in 100 s = 1 core, 50 s = 0.5 core
        ("cgroup", "11", "cpu_usage"): (pytest.approx(1.0), "s/s"),
        ("cgroup", "12", "cpu_usage"): (pytest.approx(0.5), "s/s"),
        ("cgroup", "11", "mem_current"): (5.0, "B"),
        ("cgroup", "12", "mem_current"): (9.0, "B"),
    }


def test_daemon_restart_reopens_perf_counters_as_a_gap_not_a_rate():
    """pmc counts since the daemon opened its events: a restart reads ~0 again."""
    head = "$hostname n1\n$uptime {up}\n!pmc instructions,E cycles,E ref_cycles,E flops,E\n"

    def pmc(t: float, cpu0: int, cpu1: int) -> str:
        return f"{t} - n1\npmc 0 {cpu0} 0 0 0\npmc 1 {cpu1} 0 0 0\n"

    old = head.format(up=1000) + pmc(100, 1_000, 2_000) + pmc(400, 3_001_000, 6_002_000)
    # same boot (uptime grew with the clock), events opened again at t=500
    new = head.format(up=1400) + pmc(500, 400, 900) + pmc(800, 1_500_400, 3_000_900)
    rows = rows_of(old + new).filter(pl.col("event") == "instructions").sort("time")
    assert rows["time"].dt.epoch("s").to_list() == [400, 800]
    # (3e6 + 6e6) / 300 s and (1.5e6 + 3e6) / 300 s; nothing for 400-500
    assert rows["value"].to_list() == [pytest.approx(30_000.0), pytest.approx(15_000.0)]
