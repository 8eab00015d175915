"""GPU rows through the pipeline: a MIG GPU's memory is counted once.

The monitor writes a MIG-enabled GPU's ``nvidia_gpu`` row (memory: the sum
over its instances, as NVML reports it) and one ``nvidia_mig`` row per
instance. ``nvidia_gpu`` is summed into device ``''``; ``nvidia_mig`` must
not be, or the node's GPU memory would count the instances twice.
"""

from __future__ import annotations

import polars as pl
import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.series import derive_series

GiB = 1 << 30
TEXT = (
    "$hostname g1\n$uptime 10\n"
    f"!nvidia_gpu {' '.join(e.spec() for e in schemas.NVIDIA_GPU.events)}\n"
    f"!nvidia_mig {' '.join(e.spec() for e in schemas.NVIDIA_MIG.events)}\n"
    # GPU 0 split into two instances (10 + 4 GiB used), GPU 1 whole (30 GiB used)
    "100 - g1\n"
    f"nvidia_gpu 0 0 {14 * GiB} {80 * GiB} 250000 1000000 55 1275\n"
    f"nvidia_gpu 1 87 {30 * GiB} {80 * GiB} 300000 2000000 61 1410\n"
    f"nvidia_mig 0.1.0 {10 * GiB} {40 * GiB} 42\n"
    f"nvidia_mig 0.5.0 {4 * GiB} {20 * GiB} 28\n"
    "200 - g1\n"
    f"nvidia_gpu 0 0 {14 * GiB} {80 * GiB} 250000 26000000 55 1275\n"
    f"nvidia_gpu 1 87 {30 * GiB} {80 * GiB} 300000 32000000 61 1410\n"
    f"nvidia_mig 0.1.0 {10 * GiB} {40 * GiB} 42\n"
    f"nvidia_mig 0.5.0 {4 * GiB} {20 * GiB} 28\n"
)


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    raw = read_raw(TEXT)
    assert raw.issues == []
    out = host_rows(long_frame(raw.samples))
    return out.filter(pl.col("time").dt.epoch("s") == 200)


def _values(rows: pl.DataFrame, event: str) -> dict[tuple[str, str], float]:
    sel = rows.filter(pl.col("event") == event)
    return {(r["type"], r["device"]): r["value"] for r in sel.iter_rows(named=True)}


def test_mig_memory_is_not_counted_twice(rows: pl.DataFrame):
    assert _values(rows, "mem_used") == {
        ("nvidia_gpu", ""): 44.0 * GiB,  # 14 + 30: the instances only through their GPU
        ("nvidia_gpu", "0"): 14.0 * GiB,
        ("nvidia_gpu", "1"): 30.0 * GiB,
        ("nvidia_mig", "0.1.0"): 10.0 * GiB,
        ("nvidia_mig", "0.5.0"): 4.0 * GiB,
    }
    assert rows.filter((pl.col("type") == "nvidia_mig") & (pl.col("device") == "")).is_empty()
    gpu_mem = derive_series(rows, ["gpu_mem"])
    assert gpu_mem["value"].to_list() == [44.0 * GiB]


def test_energy_becomes_watts_and_instances_keep_their_size(rows: pl.DataFrame):
    # (25000 + 30000) J of mJ counters over 100 s: 250 W + 300 W
    assert _values(rows, "energy")[("nvidia_gpu", "")] == pytest.approx(550.0)
    assert _values(rows, "sm_count") == {("nvidia_mig", "0.1.0"): 42.0,
                                         ("nvidia_mig", "0.5.0"): 28.0}
