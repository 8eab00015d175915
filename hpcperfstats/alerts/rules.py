"""Alert rules: job flag rules (``hpcperfstats.flags.rules``) plus who and how much.

An alert rule is a flag rule (metric, op, threshold, ``and``, message,
advice: parsed by the flag parser, so the language cannot drift) with a
severity, a minimum waste and optional partition/account scopes. Its version
hashes the whole rule, extras included. Nothing in the file is executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from hpcperfstats.config import env
from hpcperfstats.flags.rules import Rule, evaluate_flags, file_version, parse_rules

DEFAULT_ALERT_RULES = Path(__file__).resolve().with_name("job_alerts.yaml")
SEVERITIES = ("info", "warning", "severe")
#: waste kinds: what a job lost, from its accounting and one metric (None: no metric)
WASTE_KINDS = ("core_hours", "gpu_hours", "node_hours")

#: columns of the candidate alerts ``evaluate_alerts`` returns
ALERT_COLUMNS = {
    "jobid": pl.Utf8, "rule": pl.Utf8, "username": pl.Utf8, "severity": pl.Utf8,
    "value": pl.Float64, "waste": pl.Float64, "waste_kind": pl.Utf8, "message": pl.Utf8,
    "advice": pl.Utf8, "rule_version": pl.Utf8,
}


@dataclass(frozen=True)
class AlertRule:
    rule: Rule
    severity: str
    waste_kind: str | None
    waste_min: float
    partitions: frozenset[str] | None
    accounts: frozenset[str] | None

    @property
    def name(self) -> str:
        return self.rule.name


def alert_rules_path() -> Path:
    return Path(env("ALERT_RULES") or DEFAULT_ALERT_RULES)


def _names(raw: object, where: str, key: str) -> frozenset[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ValueError(f"{where}: {key} must be a list of names")
    return frozenset(raw)


def parse_alert_rules(text: str, source: str = "alert rules") -> list[AlertRule]:
    """Alert rules from YAML text; ValueError naming the rule on any mistake."""
    base = {r.name: r for r in parse_rules(text, source)}
    out = []
    for i, raw in enumerate((yaml.safe_load(text) or {}).get("rules") or []):
        where = f"{source}: rule {i + 1} ({raw.get('name', '?')})"
        severity = raw.get("severity", "warning")
        if severity not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {SEVERITIES}")
        waste = raw.get("waste") or {}
        if not isinstance(waste, dict):
            raise ValueError(f"{where}: waste must be {{kind: ..., min: ...}}")
        kind, least = waste.get("kind"), waste.get("min", 0)
        if kind is not None and kind not in WASTE_KINDS:
            raise ValueError(f"{where}: waste kind must be one of {WASTE_KINDS}, not {kind!r}")
        if not isinstance(least, (int, float)) or isinstance(least, bool) or least < 0:
            raise ValueError(f"{where}: waste min must be a number >= 0, not {least!r}")
        if least and kind is None:
            raise ValueError(f"{where}: waste min needs a waste kind")
        out.append(AlertRule(base[raw["name"]], severity, kind, float(least),
                             _names(raw.get("partitions"), where, "partitions"),
                             _names(raw.get("accounts"), where, "accounts")))
    return out


def load_alert_rules(path: Path | None = None) -> list[AlertRule]:
    path = path or alert_rules_path()
    return parse_alert_rules(path.read_text(), str(path))


def alert_rules_version(path: Path | None = None) -> str:
    """One hash of the whole alert rules file: the alert assets' code version."""
    return file_version(path or alert_rules_path())


def waste_expr(kind: str | None) -> pl.Expr:
    """What a job lost, in the kind's unit, over a wide row (jobs joined to metrics)."""
    hours = pl.col("elapsed_s").cast(pl.Float64) / 3600.0
    if kind == "core_hours":
        return pl.col("ncpus") * hours * (1.0 - pl.col("cpu_efficiency").clip(0.0, 1.0))
    if kind == "gpu_hours":
        return pl.col("ngpus").fill_null(0) * hours * (1.0 - pl.col("gpu_util").clip(0.0, 1.0))
    if kind == "node_hours":
        return pl.col("idle_nodes") * hours
    return pl.lit(None, pl.Float64)


def evaluate_alerts(jobs: pl.DataFrame, metrics: pl.DataFrame,
                    rules: list[AlertRule]) -> pl.DataFrame:
    """Candidate alerts (``ALERT_COLUMNS``) for ``jobs`` (job_data rows: jobid,
    username, account, partition, ncpus, ngpus, elapsed_s) from long
    ``job_metrics`` rows: the flag evaluator fires, then scope and waste filter.
    """
    fired = evaluate_flags(metrics, [r.rule for r in rules])
    if fired.is_empty():
        return pl.DataFrame(schema=ALERT_COLUMNS)
    wide = (metrics.filter(pl.col("value").is_not_null())
            .filter(pl.col("metric").is_in(["cpu_efficiency", "gpu_util", "idle_nodes"]))
            .pivot(on="metric", index="jobid", values="value"))
    for name in ("cpu_efficiency", "gpu_util", "idle_nodes"):
        if name not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(name))
    joined = (fired.join(jobs, on="jobid", how="inner")
              .join(wide, on="jobid", how="left"))
    parts = []
    for rule in rules:
        mine = joined.filter(pl.col("flag") == rule.name)
        if rule.partitions is not None:
            mine = mine.filter(pl.col("partition").is_in(sorted(rule.partitions)))
        if rule.accounts is not None:
            mine = mine.filter(pl.col("account").is_in(sorted(rule.accounts)))
        mine = mine.with_columns(waste_expr(rule.waste_kind).cast(pl.Float64).alias("waste"))
        if rule.waste_min:
            mine = mine.filter(pl.col("waste").fill_null(0.0) >= rule.waste_min)
        parts.append(mine.select(
            "jobid", pl.col("flag").alias("rule"), "username",
            pl.lit(rule.severity).alias("severity"), "value", "waste",
            pl.lit(rule.waste_kind, pl.Utf8).alias("waste_kind"), "message", "advice",
            "rule_version"))
    out = pl.concat(parts) if parts else pl.DataFrame(schema=ALERT_COLUMNS)
    return out.cast(ALERT_COLUMNS).sort(["username", "jobid", "rule"])
