"""``job_flags``: staff-written rules over the job metrics, as data not code.

Rules live in ``hpcperfstats/flags/job_flags.yaml`` (or the file named by
``HPCPERF_FLAG_RULES``). A rule is a metric, a comparison, a threshold,
optional extra conditions and a message for the researcher; nothing in the
file is executed, so a typo can never run code. Each rule's version is a
hash of its canonical form, stored on every flag row it produces: after a
rule changes, rows with the old version show which history is stale until
a backfill recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import yaml

from hpcperfstats.config import env
from hpcperfstats.db.tables import JOB_FLAGS
from hpcperfstats.jobs.metrics import METRICS, SHARED_NODE

DEFAULT_RULES = Path(__file__).with_name("job_flags.yaml")
ADVICE = ("memory", "time", "cores", "nodes", "gpus")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

FLAG_COLUMNS = JOB_FLAGS.schema


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    threshold: float

    def expr(self, frame_col: str) -> pl.Expr:
        return _OPS[self.op](pl.col(frame_col), self.threshold)


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition
    also: tuple[Condition, ...]
    message: str
    advice: str | None
    version: str


def rules_path() -> Path:
    return Path(env("FLAG_RULES") or DEFAULT_RULES)


def _condition(raw: dict, where: str) -> Condition:
    metric, op, threshold = raw.get("metric"), raw.get("op"), raw.get("threshold")
    if metric not in METRICS:
        raise ValueError(f"{where}: unknown metric {metric!r}")
    if op not in _OPS:
        raise ValueError(f"{where}: op must be one of {sorted(_OPS)}, not {op!r}")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise ValueError(f"{where}: threshold must be a number, not {threshold!r}")
    return Condition(metric, op, float(threshold))


def parse_rules(text: str, source: str = "rules") -> list[Rule]:
    """Rules from YAML text; ValueError naming the rule on any mistake."""
    doc = yaml.safe_load(text) or {}
    rules, names = [], set()
    for i, raw in enumerate(doc.get("rules") or []):
        where = f"{source}: rule {i + 1} ({raw.get('name', '?')})"
        name = raw.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ValueError(f"{where}: every rule needs a unique name")
        names.add(name)
        message = raw.get("message")
        if not isinstance(message, str):
            raise ValueError(f"{where}: message missing")
        advice = raw.get("advice")
        if advice is not None and advice not in ADVICE:
            raise ValueError(f"{where}: advice must be one of {ADVICE}")
        when = _condition(raw, where)
        also = tuple(_condition(c, f"{where} and") for c in raw.get("and") or [])
        try:  # the message must format with plain numbers
            message.format(value=1.0, threshold=1.0)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"{where}: bad message placeholder: {exc}") from None
        canonical = json.dumps({k: raw[k] for k in sorted(raw)}, sort_keys=True, default=str)
        version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        rules.append(Rule(name, when, also, message, advice, version))
    return rules


def load_rules(path: Path | None = None) -> list[Rule]:
    path = path or rules_path()
    return parse_rules(path.read_text(), str(path))


def with_thresholds(rules: list[Rule], thresholds: dict[str, float]) -> list[Rule]:
    """``rules`` with a cluster's own thresholds (rule name -> threshold of its main
    condition, ``flag_thresholds`` in the clusters file). A changed rule gets a new
    version, so its rows say which threshold made them; a name no rule has is a
    ValueError (a typo would otherwise silently keep the shared threshold)."""
    unknown = set(thresholds) - {r.name for r in rules}
    if unknown:
        raise ValueError(f"flag_thresholds name no rule: {sorted(unknown)}")
    out = []
    for rule in rules:
        if rule.name in thresholds and thresholds[rule.name] != rule.when.threshold:
            value = float(thresholds[rule.name])
            version = hashlib.sha256(f"{rule.version}:{value!r}".encode()).hexdigest()[:12]
            rule = replace(rule, when=replace(rule.when, threshold=value), version=version)
        out.append(rule)
    return out


def cluster_rules(cluster: str | None = None, path: Path | None = None) -> list[Rule]:
    """The flag rules as they apply on ``cluster``: the shared file with its overrides."""
    from hpcperfstats.clusters import cluster_config

    return with_thresholds(load_rules(path), cluster_config(cluster).flag_thresholds)


def rule_metrics(rules: list[Rule] | None = None) -> dict[str, str]:
    """Flag name -> the metric its rule judges (the shipped rules when none given;
    none when the rules file cannot be read: the caller shows flags unordered)."""
    if rules is None:
        try:
            rules = load_rules()
        except (OSError, ValueError):
            rules = []
    return {rule.name: rule.when.metric for rule in rules}


def file_version(path: Path) -> str:
    """One hash of a whole rules file (flags, alerts, applications): the code
    version of the asset that applies it, so editing the file marks its
    partitions stale in Dagster."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def rules_version(path: Path | None = None) -> str:
    """The flag rules file's version: the ``job_flags`` asset's code version."""
    return file_version(path or rules_path())


def evaluate_flags(metrics: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Flag rows for every job and rule that fires, from long ``job_metrics`` rows.

    Node totals of a node other jobs shared (source ``node (shared)``) count
    their work too: an idle job beside a busy one would read busy, a busy one
    beside idle ones... neither is the job's own, so no rule fires on them.
    """
    if "source" in metrics.columns:
        metrics = metrics.filter(pl.col("source").fill_null("") != SHARED_NODE)
    wide = (
        metrics.filter(pl.col("value").is_not_null())
        .pivot(on="metric", index="jobid", values="value")
    )
    rows = []
    for rule in rules:
        needed = [rule.when.metric, *(c.metric for c in rule.also)]
        if any(m not in wide.columns for m in needed):
            continue
        cond = rule.when.expr(rule.when.metric)
        for c in rule.also:
            cond = cond & c.expr(c.metric)
        hit = wide.filter(cond.fill_null(False)).select("jobid", rule.when.metric)
        for jobid, value in hit.iter_rows():
            rows.append({
                "jobid": jobid, "flag": rule.name, "value": value,
                "threshold": rule.when.threshold,
                "message": rule.message.format(value=value, threshold=rule.when.threshold),
                "advice": rule.advice, "rule_version": rule.version,
            })
    if not rows:
        return pl.DataFrame(schema=FLAG_COLUMNS)
    return pl.DataFrame(rows, schema=FLAG_COLUMNS).sort(["jobid", "flag"])
