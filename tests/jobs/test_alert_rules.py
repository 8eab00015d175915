"""Alert rules as data: parsing, versions, waste and scope (pure logic)."""

from __future__ import annotations

import polars as pl
import pytest

from hpcperfstats.alerts.rules import (
    DEFAULT_ALERT_RULES,
    evaluate_alerts,
    load_alert_rules,
    parse_alert_rules,
)
from hpcperfstats.alerts.send import digest_due

RULES = """
rules:
  - name: idle_nodes
    metric: idle_nodes
    op: ">="
    threshold: 1
    waste: {kind: node_hours, min: 5}
    severity: severe
    message: "{value:.0f} nodes idle"
    advice: nodes
  - name: low_cpu
    metric: cpu_efficiency
    op: "<"
    threshold: 0.5
    waste: {kind: core_hours, min: 10}
    partitions: [normal]
    message: "CPU {value:.0%}"
    advice: cores
"""

JOBS = pl.DataFrame({
    "jobid": ["a", "b", "c"], "username": ["ann", "ben", "cat"],
    "account": ["x", "x", "y"], "partition": ["normal", "normal", "small"],
    "ncpus": [64, 16, 16], "ngpus": [0, 0, 0], "elapsed_s": [36000, 3600, 36000],
})


def metrics(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"jobid": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
                        orient="row")


def test_waste_minimum_and_partitions_decide():
    m = metrics([("a", "idle_nodes", 2.0), ("a", "cpu_efficiency", 0.5 - 0.25),
                 ("b", "cpu_efficiency", 0.1), ("c", "cpu_efficiency", 0.1)])
    out = evaluate_alerts(JOBS, m, parse_alert_rules(RULES))
    # a: 2 idle nodes x 10 h = 20 node-hours (>= 5); 64 cores x 10 h x 0.75 = 480 core-hours
    # b: 16 x 1 h x 0.9 = 14.4 core-hours (>= 10); c: 'small' is not in the rule's partitions
    assert out.select("jobid", "rule", "severity", "waste").rows() == [
        ("a", "idle_nodes", "severe", 20.0), ("a", "low_cpu", "warning", 480.0),
        ("b", "low_cpu", "warning", pytest.approx(14.4))]
    assert out["message"].to_list() == ["2 nodes idle", "CPU 25%", "CPU 10%"]


def test_below_the_waste_minimum_no_alert():
    m = metrics([("b", "idle_nodes", 1.0)])  # 1 node x 1 h = 1 node-hour < 5
    assert evaluate_alerts(JOBS, m, parse_alert_rules(RULES)).is_empty()


def test_version_covers_the_alert_fields():
    before = {r.name: r.rule.version for r in parse_alert_rules(RULES)}
    after = {r.name: r.rule.version
             for r in parse_alert_rules(RULES.replace("min: 10", "min: 20"))}
    assert before["low_cpu"] != after["low_cpu"] and before["idle_nodes"] == after["idle_nodes"]


@pytest.mark.parametrize("change, error", [
    (("severity: severe", "severity: dire"), "severity must be one of"),
    (("kind: node_hours", "kind: node_years"), "waste kind must be one of"),
    (("min: 5", "min: -1"), "waste min must be a number >= 0"),
    (("partitions: [normal]", "partitions: normal"), "partitions must be a list"),
    (("metric: idle_nodes", "metric: idle_nodez"), "unknown metric"),  # the flag parser's
])
def test_mistakes_name_the_rule(change, error):
    with pytest.raises(ValueError, match=error) as exc:
        parse_alert_rules(RULES.replace(*change), "alerts.yaml")
    assert str(exc.value).startswith("alerts.yaml: rule ")


def test_shipped_rules_load():
    names = [r.name for r in load_alert_rules(DEFAULT_ALERT_RULES)]
    assert names == ["idle_nodes", "gpus_idle", "low_cpu_efficiency"]


def test_weekly_digests_go_out_on_sundays():
    from datetime import date

    assert digest_due(date(2026, 11, 24), weekly=False)
    assert not digest_due(date(2026, 11, 24), weekly=True)  # a Tuesday
    assert digest_due(date(2026, 11, 29), weekly=True)  # a Sunday
