"""A job's footprint (ClusterCockpit's): its main metrics against its partition's norms.

For each metric the job has a value for, where it falls among the partition's
jobs of the same period: the middle half (25th to 75th percentile), the
median, the 10th and 90th percentiles and the share of jobs below it. The
norms come from the caller (``peer_context`` in ``dashboards/data.py``, which
applies the privacy rule: a researcher sees no norm over fewer than 20 jobs
of 5 users); this module only places the job and decides the axis, so the
chart and its tests share one function.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from hpcperfstats.jobs.metrics import METRICS

#: the metrics of the footprint, in the job page's order of importance
FOOTPRINT_METRICS = (
    "cpu_efficiency", "mem_hwm_fraction", "gpu_util", "flops_avg", "mem_bw_avg",
    "net_bw_avg", "ib_bw_avg", "lustre_read_bw_avg", "lustre_write_bw_avg", "power_avg_w",
)
#: shares of something the job holds: their axis ends at 1 (100 %)
BOUNDED = frozenset({"cpu_efficiency", "mem_hwm_fraction", "gpu_util"})
#: a value past the axis's end by up to this much still has room (no clipping)
HEADROOM = 1.1

FOOTPRINT_SCHEMA = {
    "metric": pl.Utf8, "label": pl.Utf8, "unit": pl.Utf8, "value": pl.Float64,
    "p10": pl.Float64, "p25": pl.Float64, "median": pl.Float64, "p75": pl.Float64,
    "p90": pl.Float64, "below": pl.Float64, "jobs": pl.Int64, "users": pl.Int64,
    "axis_max": pl.Float64, "position": pl.Utf8, "tone": pl.Utf8,
}


def _position(value: float, norm: dict[str, Any]) -> str:
    """``low`` under the middle half, ``high`` over it, else ``typical``."""
    if norm["p25"] is not None and value < norm["p25"]:
        return "low"
    if norm["p75"] is not None and value > norm["p75"]:
        return "high"
    return "typical"


def _tone(position: str, better: str) -> str:
    """good/bad where the metric has a better direction and the job is outside the middle."""
    if position == "typical" or not better:
        return "neutral"
    return "good" if (position == "high") == (better == "higher") else "bad"


def footprint(values: dict[str, float | None],
              norms: dict[str, dict[str, Any] | None]) -> pl.DataFrame:
    """One row per footprint metric the job has a value for: the value, the
    partition's norms (null where withheld by the privacy rule or without
    peers), the axis's end (1 for shares, else 1.1 x the larger of the value
    and the 90th percentile) and where the job sits: ``low``/``typical``/``high``
    against the middle half, coloured by the metric's better direction."""
    rows = []
    for metric in FOOTPRINT_METRICS:
        value = values.get(metric)
        if value is None:
            continue
        spec = METRICS[metric]
        norm = norms.get(metric)
        quant = {k: (None if norm is None else norm.get(k))
                 for k in ("p10", "p25", "median", "p75", "p90")}
        top = max(v for v in (value, quant["p90"], 0.0) if v is not None)
        axis = 1.0 if metric in BOUNDED and top <= 1.0 else top * HEADROOM or 1.0
        position = _position(value, quant) if norm is not None else "unknown"
        rows.append({
            "metric": metric, "label": spec.label, "unit": spec.unit, "value": float(value),
            **{k: None if v is None else float(v) for k, v in quant.items()},
            "below": None if norm is None else float(norm["below"]),
            "jobs": None if norm is None else int(norm["jobs"]),
            "users": None if norm is None else int(norm["users"]),
            "axis_max": axis, "position": position, "tone": _tone(position, spec.better),
        })
    return pl.DataFrame(rows, schema=FOOTPRINT_SCHEMA)
