"""The footprint's placement of a job among its partition's norms (pure logic)."""

from __future__ import annotations

import pytest

from hpcperfstats.jobs.footprint import FOOTPRINT_METRICS, footprint


def _norm(p10, p25, median, p75, p90, below, jobs=40, users=7):
    return {"p10": p10, "p25": p25, "median": median, "p75": p75, "p90": p90,
            "below": below, "jobs": jobs, "users": users}


def test_placement_axis_and_tone_by_the_metrics_direction():
    values = {"cpu_efficiency": 0.2, "mem_hwm_fraction": 0.5, "flops_avg": 3e11,
              "net_bw_avg": 1e6, "gpu_util": None, "energy_j": 5.0}
    norms = {"cpu_efficiency": _norm(0.3, 0.5, 0.7, 0.9, 0.95, 0.05),
             "mem_hwm_fraction": _norm(0.1, 0.2, 0.4, 0.6, 0.8, 0.55),
             "flops_avg": _norm(1e9, 1e10, 5e10, 1e11, 2e11, 1.0),
             "net_bw_avg": None}  # withheld: the privacy rule
    rows = {r["metric"]: r for r in footprint(values, norms).iter_rows(named=True)}
    # only metrics with a value, in the footprint's order
    assert list(rows) == [m for m in FOOTPRINT_METRICS if m in rows]
    assert set(rows) == {"cpu_efficiency", "mem_hwm_fraction", "flops_avg", "net_bw_avg"}
    eff = rows["cpu_efficiency"]
    # 0.2 < p25 0.5: low, and higher is better -> bad; a share's axis ends at 100 %
    assert (eff["position"], eff["tone"], eff["axis_max"]) == ("low", "bad", 1.0)
    assert (eff["median"], eff["below"], eff["jobs"], eff["users"]) == (0.7, 0.05, 40, 7)
    mem = rows["mem_hwm_fraction"]  # inside the middle half; no better direction
    assert (mem["position"], mem["tone"]) == ("typical", "neutral")
    flops = rows["flops_avg"]  # above p75, higher is better: good; axis 1.1 x 3e11
    assert (flops["position"], flops["tone"]) == ("high", "good")
    assert flops["axis_max"] == pytest.approx(3.3e11)
    net = rows["net_bw_avg"]  # no norm: placed nowhere, said so
    assert (net["position"], net["jobs"], net["median"]) == ("unknown", None, None)
    assert net["axis_max"] == pytest.approx(1.1e6)


def test_no_values_no_rows():
    assert footprint({}, {}).is_empty()
    assert footprint({"cpu_efficiency": None}, {}).is_empty()
