"""The roofline of a job: FLOPS against arithmetic intensity, per node and per job.

A node can do at most ``min(peak FLOPS, intensity x peak memory bandwidth)``
floating-point operations per second, where the arithmetic intensity is the
FLOPs done per byte moved between the memory controllers and the cores
(Williams, Waterman and Patterson, 2009). Where a job sits under that roof
says what limits it: left of the ridge point (``peak FLOPS / peak
bandwidth``) memory bandwidth, right of it the cores. FLOPs come from the
``pmc`` type (``flops`` series), bytes from ``imc`` (``mem_bw``: read +
write); the peaks are the node's, given by the caller (one function taking
them, so per-cluster peaks need no change here).

Plain functions over polars frames: the job page and the tests call them on
the same named series (``host``, ``series``, ``time``, ``value``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from hpcperfstats.clusters import NodePeak, node_peak
from hpcperfstats.config import env
from hpcperfstats.jobs.metrics import SOURCE_NAMES

#: one row per node (``scope`` ``node``) and one for the job (``scope`` ``job``,
#: ``host`` empty): FLOP/s and memory bytes/s per node, FLOPs per byte, the roof
#: at that intensity, the share of it reached, and which roof applies
ROOFLINE_SCHEMA = {
    "scope": pl.Utf8, "host": pl.Utf8, "flops": pl.Float64, "mem_bw": pl.Float64,
    "intensity": pl.Float64, "attainable": pl.Float64, "of_attainable": pl.Float64,
    "bound": pl.Utf8,
}


@dataclass(frozen=True)
class Peaks:
    """A node's peak floating-point rate (FLOP/s) and memory bandwidth (bytes/s);
    None where unknown."""

    flops: float | None
    mem_bw: float | None

    @property
    def known(self) -> bool:
        return bool(self.flops and self.mem_bw)

    @property
    def ridge(self) -> float | None:
        """The intensity (FLOPs per byte) where the bandwidth roof meets the compute roof."""
        return self.flops / self.mem_bw if self.known else None  # type: ignore[operator]

    def attainable(self, intensity: float) -> float | None:
        """The roof at ``intensity``: what the node can do at that many FLOPs per byte."""
        if not self.known:
            return None
        return min(self.flops, intensity * self.mem_bw)  # type: ignore[arg-type, operator]


def _float(name: str) -> float | None:
    text = env(name)
    return float(text) if text else None


def node_peaks(cluster: str | None = None, partition: str | None = None) -> Peaks:
    """The node peaks of ``cluster`` (and ``partition``) from the clusters file
    (``hpcperfstats.clusters.node_peak``), where it says; otherwise the site-wide
    settings ``HPCPERF_NODE_PEAK_FLOPS`` and ``HPCPERF_NODE_PEAK_MEM_BW`` (unset:
    unknown, the roof is not drawn). One lookup, so the page and a cluster's own
    peaks never disagree."""
    try:
        own = node_peak(cluster, partition)
    except KeyError:  # a cluster the file does not declare: the site-wide peaks
        own = NodePeak()
    return Peaks(own.peak_flops if own.peak_flops is not None else _float("NODE_PEAK_FLOPS"),
                 own.mem_bandwidth if own.mem_bandwidth is not None
                 else _float("NODE_PEAK_MEM_BW"))


def _point(flops: float, mem_bw: float, peaks: Peaks) -> dict[str, object]:
    intensity = flops / mem_bw if mem_bw > 0 else None
    roof = peaks.attainable(intensity) if intensity is not None else None
    ridge = peaks.ridge
    return {
        "flops": flops, "mem_bw": mem_bw, "intensity": intensity, "attainable": roof,
        "of_attainable": flops / roof if roof else None,
        "bound": None if ridge is None or intensity is None
        else ("memory" if intensity < ridge else "compute"),
    }


def roofline(series: pl.DataFrame, peaks: Peaks) -> pl.DataFrame:
    """Per node and for the job: mean FLOP/s and memory bytes/s over the points
    where both were measured (a point missing one never pairs with a zero), the
    intensity (their ratio) and the roof there.

    The job's row is per node (the mean of its nodes' means), so it sits on
    the same axes as a node's; its intensity is total FLOPs over total bytes.
    Empty where no node has both series.
    """
    wanted = series.filter(pl.col("series").is_in(["flops", "mem_bw"]))
    if wanted.is_empty():
        return pl.DataFrame(schema=ROOFLINE_SCHEMA)
    paired = (wanted.pivot(on="series", index=["host", "time"], values="value",
                           aggregate_function="mean")
              .drop_nulls([c for c in ("flops", "mem_bw") if c in wanted["series"]]))
    if "flops" not in paired.columns or "mem_bw" not in paired.columns or paired.is_empty():
        return pl.DataFrame(schema=ROOFLINE_SCHEMA)
    nodes = paired.group_by("host").agg(pl.col("flops").mean(), pl.col("mem_bw").mean()).sort(
        "host")
    rows = [{"scope": "node", "host": h, **_point(f, b, peaks)}
            for h, f, b in nodes.select("host", "flops", "mem_bw").iter_rows()]
    rows.insert(0, {"scope": "job", "host": "",
                    **_point(nodes["flops"].mean(), nodes["mem_bw"].mean(), peaks)})
    return pl.DataFrame(rows, schema=ROOFLINE_SCHEMA)


def roofline_missing(series: pl.DataFrame, peaks: Peaks) -> str | None:
    """Why there is no roofline point for these series, in words; None when there is.

    The roof (peaks) missing alone does not hide the point: it is said by
    :func:`roof_note`.
    """
    present = set(series["series"].unique().to_list()) if not series.is_empty() else set()
    have_flops, have_bytes = "flops" in present, "mem_bw" in present
    if have_flops and have_bytes:
        if roofline(series, peaks).is_empty():
            return ("No roofline: FLOPS and memory traffic were never measured at the same "
                    "moments on any node of this job.")
        return None
    pmc, imc = SOURCE_NAMES["pmc"], SOURCE_NAMES["imc"]
    if not have_flops and not have_bytes:
        return (f"No roofline: the job's nodes reported no {pmc} and no {imc} (types pmc "
                "and imc). The monitor needs perf_event access (root or CAP_PERFMON) and a "
                "CPU whose FP and memory-controller events it knows; VMs usually have none.")
    if not have_bytes:
        return (f"No roofline: FLOPS were measured but the nodes reported no {imc} (type "
                "imc), so the bytes behind them, and the intensity, are unknown.")
    return (f"No roofline: memory traffic was measured but the nodes reported no {pmc} "
            "FLOPS (type pmc: no FP-operation event known for this CPU?).")


def roof_note(peaks: Peaks) -> str | None:
    """Why the roof is not drawn (the node's peaks are not configured); None when it is."""
    if peaks.known:
        return None
    return ("The roof is not drawn: the node's peak FLOPS and memory bandwidth are not "
            "configured (HPCPERF_NODE_PEAK_FLOPS, HPCPERF_NODE_PEAK_MEM_BW).")
