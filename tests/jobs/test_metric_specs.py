"""Each metric is one entry of ``METRICS``: label, unit, source, direction and formula."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from hpcperfstats.jobs.metrics import METRICS, compute_job_metrics


def test_every_metric_is_fully_declared():
    for name, spec in METRICS.items():
        assert spec.label and spec.unit and spec.why, name
        assert isinstance(spec.formula, pl.Expr), name
        assert spec.source in ("cpu", "memory", "gpu", "node", "accounting"), name
        assert spec.better in ("higher", "lower", ""), name


def test_an_accounting_metric_comes_from_its_formula_alone():
    """time_limit_ratio needs no host data: 4 h asked for a 1 h run is 4."""
    start = datetime(2026, 3, 19, 10, tzinfo=UTC)
    jobs = pl.DataFrame({"jobid": ["1"], "start_time": [start],
                         "end_time": [start + timedelta(hours=1)], "hosts": [["c1"]],
                         "ncpus": [8], "nnodes": [1], "timelimit_s": [4 * 3600]})
    series = pl.DataFrame(schema={"time": pl.Datetime("us", "UTC"), "host": pl.Utf8,
                                  "series": pl.Utf8, "value": pl.Float64})
    out = compute_job_metrics(jobs, series)
    row = out.filter(pl.col("metric") == "time_limit_ratio").row(0, named=True)
    assert (row["value"], row["source"], row["unit"]) == (4.0, "accounting", "1")
    cpu = out.filter(pl.col("metric") == "cpu_efficiency").row(0, named=True)
    assert cpu["value"] is None and cpu["reason"] == "no data"
