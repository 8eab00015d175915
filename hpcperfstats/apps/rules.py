"""Application rules as data: executable or process-name patterns -> application.

The rules live in ``hpcperfstats/apps/app_rules.yaml`` (or the file named by
``HPCPERF_APP_RULES``); staff edit them like the flag rules, and nothing in
the file is executed. The file's hash is the ``job_applications`` asset's
code version and is stored on every row, so a rule change shows which
history is stale until a backfill recomputes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from hpcperfstats.config import env
from hpcperfstats.flags.rules import file_version

DEFAULT_RULES = Path(__file__).with_name("app_rules.yaml")
#: processes of this category are node daemons, not the job's work
SYSTEM = "system"
#: the application of a process no rule names
UNKNOWN = "unknown"
_DELETED = " (deleted)"  # the kernel's suffix on the exe link of a replaced binary


@dataclass(frozen=True)
class AppRule:
    name: str
    category: str
    exe: tuple[str, ...]
    command: tuple[str, ...]

    def matches(self, exe: str | None, command: str | None) -> bool:
        """Whether the executable path or the process name fits one of the patterns."""
        if exe:
            path = exe.removesuffix(_DELETED)
            base = path.rsplit("/", 1)[-1]
            for pattern in self.exe:
                if fnmatchcase(path if "/" in pattern else base, pattern):
                    return True
        return bool(command) and any(fnmatchcase(command, p) for p in self.command)


def app_rules_path() -> Path:
    return Path(env("APP_RULES") or DEFAULT_RULES)


def _patterns(raw: dict, key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError(f"{where}: {key} must be a list of non-empty patterns")
    return tuple(value)


def parse_app_rules(text: str, source: str = "rules") -> list[AppRule]:
    """Rules from YAML text, in order; ValueError naming the rule on any mistake."""
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a mapping with 'rules'")
    rules: list[AppRule] = []
    names: set[str] = set()
    for i, raw in enumerate(doc.get("rules") or []):
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: rule {i + 1} is not a mapping")
        where = f"{source}: rule {i + 1} ({raw.get('name', '?')})"
        name, category = raw.get("name"), raw.get("category")
        if not isinstance(name, str) or not name or name in names or name == UNKNOWN:
            raise ValueError(f"{where}: every rule needs a unique name (not {UNKNOWN!r})")
        if not isinstance(category, str) or not category:
            raise ValueError(f"{where}: category missing")
        unknown = set(raw) - {"name", "category", "exe", "command"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        exe, command = _patterns(raw, "exe", where), _patterns(raw, "command", where)
        if not exe and not command:
            raise ValueError(f"{where}: needs exe or command patterns")
        names.add(name)
        rules.append(AppRule(name, category, exe, command))
    return rules


def load_app_rules(path: Path | None = None) -> list[AppRule]:
    path = path or app_rules_path()
    return parse_app_rules(path.read_text(), str(path))


def app_rules_version(path: Path | None = None) -> str:
    """One hash of the whole rules file: the asset's code version and each row's version."""
    return file_version(path or app_rules_path())


def classify(rules: list[AppRule], exe: str | None, command: str | None) -> AppRule | None:
    """The first rule that names this process; None for an unknown one."""
    for rule in rules:
        if rule.matches(exe, command):
            return rule
    return None
