"""The roofline from the recorded perf sysfs trees, worked out by hand.

The monitor's own ``pmc`` and ``imc`` collectors read the hand-built trees
``nodetree_perf_intel`` (Skylake-SP) and ``nodetree_perf_amd`` (Zen 4) through
the fake kernel of ``test_perf_collectors``; their rows are written in the raw
format, read back by the pipeline (rates, named series) and placed by
``hpcperfstats.jobs.roofline``. Every expected number below is computed by hand
from the counts the fake kernel returns.
"""

from __future__ import annotations

import errno

import polars as pl
import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.collectors import imc, pmc
from hpcperf_monitor.rawformat import Header, Sample, read_raw, write_header, write_sample
from test_perf_collectors import AMD, FP_1, FP_8, FP_16, INTEL, FakeKernel

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.series import derive_series
from hpcperfstats.jobs.roofline import Peaks, roof_note, roofline, roofline_missing

T0, DT = 1_790_000_000.0, 300.0
# Intel: uncore_imc_0 is PMU type 14, uncore_imc_1 type 15; cas_count_read event 0x04
# umask 0x03, cas_count_write umask 0x0c (README of the tree)
IMC_READ, IMC_WRITE = 0x0304, 0x0C04
# AMD Zen 4: PMCx003 all FP ops (umask 0x1f) on the core PMU (type 4); amd_umc_0 type 15,
# amd_umc_2 type 17: umc_cas_cmd.rd = event 0x0a rdwrmask 1 (266), .wr = rdwrmask 2 (522)
AMD_FP, UMC_RD, UMC_WR = 0x1F03, 266, 522


def _raw(host: str, tree, kernel: FakeKernel, later: dict, daemon_dir) -> str:
    """Two samples 300 s apart of ``host``'s pmc and imc, as the monitor writes them:
    the events read 0 when opened (enabled and running 1 ns), then the counts of
    ``later`` (value, ns enabled, ns running: running < enabled is multiplexed)."""
    collectors = (pmc.Pmc(daemon_dir, kernel=kernel), imc.Imc(daemon_dir, kernel=kernel))
    header = Header(properties={"hostname": host, "uptime": "100000"},
                    schemas={"pmc": schemas.PMC, "imc": schemas.IMC})
    text = write_header(header)
    for k, counts in enumerate(({}, later)):
        kernel.counts = dict(counts)
        rows = {c.TYPE: {d: list(v) for d, v in c(tree).items()} for c in collectors}
        text += write_sample(Sample(time=T0 + k * DT, jobid="42", host=host, header=header,
                                    rows=rows))
    return text


@pytest.fixture
def series(daemon_dir) -> pl.DataFrame:
    intel = {
        (4, FP_1, 0): (2_000_000_000, 301, 301),    # scalar: 1 FLOP each        ->  2e9
        (4, FP_8, 1): (750_000_000, 601, 301),    # 512b packed double, x8, counted half
                                                # the time: 1.5e9 x 8        -> 12e9
        (4, FP_16, 3): (1_000_000_000, 301, 301),   # 512b packed single, x16   -> 16e9
        (14, IMC_READ, 0): (150_000_000, 301, 301),   # CAS of 64 B: 9.6e9 B
        (15, IMC_READ, 2): (100_000_000, 301, 301),   # 6.4e9 B
        (14, IMC_WRITE, 0): (62_500_000, 301, 301),   # 4.0e9 B
    }
    amd = {
        (4, AMD_FP, 0): (40_000_000_000, 301, 301),  # PMCx003 counts FLOPs: 4e10
        (4, AMD_FP, 2): (20_000_000_000, 301, 301),  # 2e10
        (15, UMC_RD, 0): (100_000_000, 301, 301),    # 6.4e9 B
        (17, UMC_WR, 2): (50_000_000, 301, 301),     # 3.2e9 B
    }
    text = _raw("n1", INTEL, FakeKernel(), intel, daemon_dir)
    text += _raw("n2", AMD, FakeKernel(fail={(0, 9): errno.ENOENT}), amd, daemon_dir)
    raw = read_raw(text)
    assert raw.issues == []
    return derive_series(host_rows(long_frame(raw.samples)), ["flops", "mem_bw"])


def test_roofline_of_the_intel_and_amd_trees_by_hand(series):
    peaks = Peaks(flops=2e9, mem_bw=1e8)  # ridge at 20 FLOP/B
    points = roofline(series, peaks)
    node = {r["host"]: r for r in points.filter(pl.col("scope") == "node").iter_rows(named=True)}
    # Intel: (2 + 12 + 16) e9 FLOPs, (9.6 + 6.4 + 4.0) e9 B in 300 s
    assert node["n1"]["flops"] == pytest.approx(30e9 / 300)       # 1e8 FLOP/s
    assert node["n1"]["mem_bw"] == pytest.approx(20e9 / 300)      # 6.67e7 B/s
    assert node["n1"]["intensity"] == pytest.approx(1.5)          # 30e9 / 20e9
    # under the bandwidth roof: 1.5 FLOP/B x 1e8 B/s = 1.5e8 FLOP/s, reached 2/3 of it
    assert node["n1"]["attainable"] == pytest.approx(1.5e8)
    assert node["n1"]["of_attainable"] == pytest.approx(2 / 3)
    assert node["n1"]["bound"] == "memory"
    # AMD: 6e10 FLOPs, 9.6e9 B -> 6.25 FLOP/B
    assert node["n2"]["flops"] == pytest.approx(60e9 / 300)
    assert node["n2"]["mem_bw"] == pytest.approx(9.6e9 / 300)
    assert node["n2"]["intensity"] == pytest.approx(6.25)
    assert node["n2"]["attainable"] == pytest.approx(6.25e8)
    # the job, per node: mean of the nodes; intensity = all FLOPs / all bytes = 90 / 29.6
    (job,) = points.filter(pl.col("scope") == "job").iter_rows(named=True)
    assert job["flops"] == pytest.approx(1.5e8)
    assert job["mem_bw"] == pytest.approx((20e9 + 9.6e9) / 2 / 300)
    assert job["intensity"] == pytest.approx(90 / 29.6)
    assert job["attainable"] == pytest.approx(90 / 29.6 * 1e8)
    # a node right of the ridge is compute-bound: its roof is the peak
    fast = roofline(series, Peaks(flops=4e8, mem_bw=1e8))  # ridge at 4 FLOP/B
    n2 = fast.filter(pl.col("host") == "n2").row(0, named=True)
    assert (n2["bound"], n2["attainable"], n2["of_attainable"]) == ("compute", 4e8, 0.5)
    assert roofline_missing(series, peaks) is None and roof_note(peaks) is None


def test_missing_counters_or_peaks_are_said_in_words(series):
    peaks = Peaks(flops=None, mem_bw=None)
    points = roofline(series, peaks)  # the point stands without the roof
    assert points.filter(pl.col("scope") == "job")["intensity"][0] == pytest.approx(90 / 29.6)
    assert points["attainable"].null_count() == points.height
    assert "not configured (HPCPERF_NODE_PEAK_FLOPS" in roof_note(peaks)
    flops_only = series.filter(pl.col("series") == "flops")
    assert roofline(flops_only, peaks).is_empty()
    assert "no memory-controller counters (type imc)" in roofline_missing(flops_only, peaks)
    assert "no hardware performance counters (PMU)" in roofline_missing(
        series.filter(pl.col("series") == "mem_bw"), peaks)
    assert "no hardware performance counters (PMU) and no memory-controller" in \
        roofline_missing(series.clear(), peaks)
