"""Flag rules as a data file: parsing, versions, evaluation."""

from __future__ import annotations

import polars as pl
import pytest

from hpcperfstats.flags.rules import (
    DEFAULT_RULES,
    evaluate_flags,
    load_rules,
    parse_rules,
    rules_version,
)

RULES = """
rules:
  - name: low_cpu
    metric: cpu_efficiency
    op: "<"
    threshold: 0.5
    message: "CPU {value:.0%} under {threshold:.0%}"
    advice: cores
  - name: overrequested
    metric: mem_requested_ratio
    op: ">"
    threshold: 4
    and:
      - {metric: mem_hwm_fraction, op: "<", threshold: 0.5}
    message: "{value:.0f}x"
"""


def metrics(rows: list[tuple[str, str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"jobid": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
                        orient="row")


def test_rules_fire_on_thresholds_and_never_on_null():
    rules = parse_rules(RULES)
    m = metrics([("a", "cpu_efficiency", 0.25), ("b", "cpu_efficiency", 0.5),
                 ("c", "cpu_efficiency", None),
                 ("a", "mem_requested_ratio", 8.0), ("a", "mem_hwm_fraction", 0.1),
                 ("b", "mem_requested_ratio", 8.0), ("b", "mem_hwm_fraction", 0.6),
                 ("c", "mem_requested_ratio", 8.0)])  # c: the extra condition is NULL
    out = evaluate_flags(m, rules)
    assert out.select("jobid", "flag", "message").rows() == [
        ("a", "low_cpu", "CPU 25% under 50%"), ("a", "overrequested", "8x")]
    assert out["advice"].to_list() == ["cores", None]


def test_rule_version_changes_with_that_rule_only():
    before = {r.name: r.version for r in parse_rules(RULES)}
    changed = RULES.replace("threshold: 0.5\n", "threshold: 0.4\n", 1)
    after = {r.name: r.version for r in parse_rules(changed)}
    assert before["low_cpu"] != after["low_cpu"]
    assert before["overrequested"] == after["overrequested"]


@pytest.mark.parametrize("change, error", [
    (("metric: cpu_efficiency", "metric: cpu_effciency"), "unknown metric 'cpu_effciency'"),
    (('op: "<"', 'op: "=="'), "op must be one of"),
    (("threshold: 0.5", "threshold: high"), "threshold must be a number"),
    (("{value:.0%} under", "{vlaue} under"), "bad message placeholder"),
    (("name: overrequested", "name: low_cpu"), "unique name"),
    (("advice: cores", "advice: coffee"), "advice must be one of"),
])
def test_mistakes_name_the_rule(change, error):
    with pytest.raises(ValueError, match=error) as exc:
        parse_rules(RULES.replace(*change), "my.yaml")
    assert str(exc.value).startswith("my.yaml: rule ")


def test_shipped_rules_load_and_the_env_var_overrides(tmp_path, monkeypatch):
    shipped = load_rules()
    assert {r.name for r in shipped} >= {"idle_nodes", "low_cpu_efficiency", "memory_near_limit",
                                        "memory_overrequested", "gpus_idle",
                                        "lustre_metadata_storm", "load_imbalance",
                                        "time_limit_overestimated"}
    own = tmp_path / "flags.yaml"
    own.write_text(RULES)
    monkeypatch.setenv("HPCPERF_FLAG_RULES", str(own))
    assert [r.name for r in load_rules()] == ["low_cpu", "overrequested"]
    assert rules_version() != rules_version(DEFAULT_RULES)


def test_the_rules_hash_is_the_dagster_code_version():
    from hpcperf_assets.job_flags import job_flags

    assert job_flags.code_versions_by_key[job_flags.key] == rules_version(DEFAULT_RULES)
