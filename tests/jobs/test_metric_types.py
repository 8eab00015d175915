"""Metrics of the types the demo does not produce, from hand-built host_data rows.

One node ``g1`` runs job J1 (16 cores, 2 GPUs) for an hour, sampled every
10 minutes with constant rates, so each metric is a number worked out by
hand. Node ``s1`` is shared: job J2's own cgroup says 4 cores and 6 GB
while the node as a whole reads 16 busy cores.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from hpcperfstats.hostdata.series import LUSTRE_MD_EVENTS, derive_cgroup_series, derive_series
from hpcperfstats.jobs.metrics import compute_job_metrics

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
COLS = {"time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "type": pl.Utf8,
        "device": pl.Utf8, "event": pl.Utf8, "value": pl.Float64}

G1 = {
    ("cpu", "user"): 8.0, ("cpu", "nice"): 0.0, ("cpu", "system"): 0.0, ("cpu", "irq"): 0.0,
    ("cpu", "softirq"): 0.0, ("cpu", "idle"): 8.0, ("cpu", "iowait"): 0.0,
    ("mem", "MemUsed"): 10e9, ("mem", "FilePages"): 1e9, ("mem", "Slab"): 1e9,
    ("mem", "MemTotal"): 64e9,
    ("pmc", "flops"): 1e12, ("pmc", "cycles"): 8 * 2.5e9,
    ("imc", "read_bytes"): 3e10, ("imc", "write_bytes"): 1e10,
    ("ib_ext", "port_xmit_data"): 1e9, ("ib_ext", "port_rcv_data"): 1e9,
    ("ib_ext", "port_xmit_pkts"): 1e6, ("ib_ext", "port_rcv_pkts"): 1e6,
    ("llite", "read_bytes"): 1e8, ("llite", "write_bytes"): 3e8,
    **{("llite", e): 1000.0 for e in LUSTRE_MD_EVENTS},
    ("rapl", "pkg_energy"): 300.0, ("rapl", "dram_energy"): 50.0,
    ("nvidia_gpu", "utilization"): 10.0, ("nvidia_gpu", "mem_used"): 2e9,
    ("nvidia_gpu", "energy"): 400.0,
}
S1 = {k: v for k, v in G1.items() if k[0] in ("cpu", "mem")} | {("cpu", "user"): 16.0}


def rows(host: str, values: dict, device: str = "") -> list[tuple]:
    return [(T0 + timedelta(minutes=m), host, t, device, e, v)
            for m in range(0, 61, 10) for (t, e), v in values.items()]


def job(jobid: str, host: str, ncpus: int, ngpus: int) -> dict:
    return {"jobid": jobid, "start_time": T0, "end_time": T0 + timedelta(hours=1),
            "hosts": [host], "ncpus": ncpus, "nnodes": 1, "ngpus": ngpus,
            "req_mem_bytes": 64 * 10**9, "timelimit_s": 4 * 3600}


@pytest.fixture(scope="module")
def result() -> dict[str, dict[str, tuple]]:
    cg = {("cgroup", "cpu_usage"): 4.0, ("cgroup", "mem_current"): 5e9,
          ("cgroup", "mem_peak"): 6e9, ("cgroup", "io_read_bytes"): 1.0,
          ("cgroup", "io_write_bytes"): 1.0}
    data = pl.DataFrame(rows("g1", G1) + rows("s1", S1) + rows("s1", cg, device="J2")
                        + rows("s1", {k: 9.0 for k in cg}, device="OTHER"),
                        schema=COLS, orient="row")
    series = derive_series(data)
    cgroup = derive_cgroup_series(data.filter(pl.col("type") == "cgroup"))
    jobs = pl.DataFrame([job("J1", "g1", 16, 2), job("J2", "s1", 8, 0)])
    out = compute_job_metrics(jobs.cast({"ncpus": pl.Int32, "nnodes": pl.Int32,
                                         "ngpus": pl.Int32}), series, cgroup)
    return {j: {r["metric"]: (r["value"], r["source"], r["reason"])
                for r in out.filter(pl.col("jobid") == j).iter_rows(named=True)}
            for j in ("J1", "J2")}


def test_hardware_counters_give_their_hand_computed_metrics(result):
    m = result["J1"]
    assert m["cpu_efficiency"][:2] == (pytest.approx(0.5), "node")  # 8 of 16
    assert m["flops_avg"][0] == pytest.approx(1e12)
    assert m["cpu_freq_hz"][0] == pytest.approx(2.5e9)  # 2e10 cycles/s over 8 busy cores
    assert m["mem_bw_avg"][0] == pytest.approx(4e10)
    assert m["ib_bw_avg"][0] == pytest.approx(2e9)
    assert m["ib_packet_bytes"][0] == pytest.approx(1000.0)  # 2e9 B/s over 2e6 packets/s
    assert m["lustre_read_bw_avg"][0] == pytest.approx(1e8)
    assert m["lustre_write_bw_avg"][0] == pytest.approx(3e8)
    assert m["lustre_md_ops_avg"][0] == pytest.approx(9000.0)  # nine events x 1000/s


def test_gpu_power_energy_and_memory(result):
    m = result["J1"]
    assert m["gpu_util"][0] == pytest.approx(0.05)  # 10 GPU-% summed over 2 GPUs
    assert m["gpu_mem_hwm_bytes"][0] == pytest.approx(2e9)
    assert m["power_avg_w"][0] == pytest.approx(750.0)  # 300 + 50 RAPL + 400 GPU
    assert m["energy_j"][0] == pytest.approx(750.0 * 3600)
    assert m["mem_hwm_bytes"][0] == pytest.approx(8e9)  # 10 - 1 - 1 GB
    assert m["mem_hwm_fraction"][0] == pytest.approx(8 / 64)
    assert m["time_limit_ratio"][:2] == (pytest.approx(4.0), "accounting")


def test_shared_node_uses_the_jobs_own_cgroup(result):
    m = result["J2"]
    assert m["cpu_cores_avg"][:2] == (pytest.approx(4.0), "cgroup")  # not the node's 16
    assert m["cpu_efficiency"][:2] == (pytest.approx(0.5), "cgroup")
    assert m["mem_hwm_bytes"][:2] == (pytest.approx(6e9), "cgroup")  # mem_peak
    assert m["gpu_util"] == (None, None, "no GPUs allocated")
    # absent counters: NULL, never 0, and the reason names the missing source
    assert m["flops_avg"] == (None, None, "not measured: the node has no hardware "
                              "performance counters (PMU)")
    assert m["ib_packet_bytes"] == (None, None, "not measured: the node has no InfiniBand "
                                    "counters")
    assert m["power_avg_w"] == (None, None, "not measured: the node has no RAPL energy "
                                "counters")


def test_legacy_ib_is_used_only_where_ib_ext_is_absent():
    base = {("port_xmit_data",): 1.0, ("port_rcv_data",): 1.0}
    data = pl.DataFrame(
        rows("a", {("ib_ext", e[0]): 5.0 for e in base}) + rows("a", {("ib", e[0]): 1.0
                                                                       for e in base})
        + rows("b", {("ib", e[0]): 2.0 for e in base}), schema=COLS, orient="row")
    s = derive_series(data, ["ib_bw"])
    per_host = dict(s.group_by("host").agg(pl.col("value").max()).iter_rows())
    assert per_host == {"a": 10.0, "b": 4.0}
    assert s.height == 2 * 7  # one point per host and sample, never both types
