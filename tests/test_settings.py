"""The settings registry is the one table of ``HPCPERF_*`` settings.

Every name the code, scripts or deployment use is registered; nothing but
``hpcperfstats.config`` reads one from the environment; the README's table
and ``deploy/.env.example`` agree with the registry.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hpcperfstats import config
from hpcperfstats.config import REGISTRY, SETTINGS, env, is_set, markdown_table, settings

REPO = Path(__file__).resolve().parent.parent
NAME = re.compile(r"HPCPERF_([A-Z0-9_]+)")
#: the node monitor is its own package with its own settings (monitor/README.md)
MONITOR_OWNED = ("MONITOR_", "PROLOG_")
#: where settings are used, besides tests
PRODUCT = ("hpcperfstats", "hpcperf_dagster", "dashboards", "scripts", "deploy", "docs",
           "README.md", "benchmarks")


def _tracked(*paths: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *paths], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    return [REPO / p for p in out if (REPO / p).is_file()]


def test_every_name_in_use_is_registered():
    used = set()
    for path in _tracked(*PRODUCT):
        used |= set(NAME.findall(path.read_text(errors="replace")))
    unknown = {n for n in used if n not in SETTINGS and not n.startswith(MONITOR_OWNED)}
    assert unknown == set(), "add these to hpcperfstats.config.REGISTRY"


def test_only_config_reads_the_environment():
    reader = re.compile(r"environ\.get\(\s*f?[\"']HPCPERF_"  # a read, not a write:
                        r"|environ\[\s*f?[\"']HPCPERF_\w*[\"']\](?!\s*=)")
    readers = [str(p.relative_to(REPO)) for p in _tracked("*.py")
               if not p.is_relative_to(REPO / "tests") and not p.is_relative_to(REPO / "monitor")
               and reader.search(p.read_text())]
    assert readers == []


def test_readme_table_is_the_registry():
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "regenerate it: python -m hpcperfstats.config"


def test_env_example_names_are_registered_and_parse():
    for line in (REPO / "deploy/.env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if line.startswith("#") or not name.startswith("HPCPERF_"):
            continue
        setting = SETTINGS[name.removeprefix("HPCPERF_")]  # KeyError: not registered
        if value and setting.kind == "int":
            int(value)
        elif value and setting.kind == "float":
            float(value)
        elif value and setting.kind == "datetime":
            datetime.fromisoformat(value)


def test_registry_is_well_formed():
    assert len(SETTINGS) == len(REGISTRY), "a name registered twice"
    for s in REGISTRY:
        assert s.scope in ("server", "setup", "deploy") and s.meaning, s.name
        if s.default is not None and s.kind in ("int", "float"):
            float(s.default)


def test_env_defaults_and_empty_means_unset(monkeypatch):
    monkeypatch.delenv("HPCPERF_CLUSTER", raising=False)
    assert env("CLUSTER") == "demo" and not is_set("CLUSTER")
    monkeypatch.setenv("HPCPERF_CLUSTER", "  ")
    assert env("CLUSTER") == "demo" and not is_set("CLUSTER")
    monkeypatch.setenv("HPCPERF_CLUSTER", " frontera ")
    assert env("CLUSTER") == "frontera" and is_set("CLUSTER")
    with pytest.raises(KeyError):
        env("NOT_A_SETTING")


def test_settings_from_the_registry(monkeypatch, tmp_path):
    for s in REGISTRY:
        monkeypatch.delenv(s.variable, raising=False)
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path))
    monkeypatch.setenv("HPCPERF_CHUNK_MAX_BYTES", "1000")
    monkeypatch.setenv("HPCPERF_PARTITION_START", "2026-03-01T06:00")
    got = settings()
    assert got.archive_dir == tmp_path / "archive"
    assert got.message_max_bytes == 1000  # follows the chunk bound unless set
    assert got.partition_start == datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert got.database_url is None and got.embedded_port == 54329
    assert got.epoch_earliest == datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    monkeypatch.setenv("HPCPERF_ARCHIVE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HPCPERF_MESSAGE_MAX_BYTES", "500")
    assert settings().archive_dir == tmp_path / "elsewhere"
    assert settings().message_max_bytes == 500
    assert config.markdown_table().count("\n") == 2 + sum(s.scope != "deploy" for s in REGISTRY)
