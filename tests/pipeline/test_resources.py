"""Resources carry their configuration as fields: EnvVar when set, else the registry's default."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, EnvVar, asset, materialize

from hpcperf_dagster.resources import Broker, Paths, resources
from hpcperfstats.config import REGISTRY

PATH_VARS = ("HOME", "ARCHIVE_DIR", "QUARANTINE_DIR", "ACCOUNTING_DIR")


def _clear(monkeypatch) -> None:
    for s in REGISTRY:
        monkeypatch.delenv(s.variable, raising=False)


def test_paths_from_a_directory_handed_in(monkeypatch, tmp_path):
    _clear(monkeypatch)
    paths = Paths(home=str(tmp_path))
    assert (paths.archive, paths.quarantine, paths.accounting) == (
        tmp_path / "archive", tmp_path / "quarantine", tmp_path / "accounting")
    assert Paths(home=str(tmp_path), archive_dir="/srv/raw").archive == Path("/srv/raw")


def test_empty_fields_follow_the_registry(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path))
    monkeypatch.setenv("HPCPERF_CLUSTER", "frontera")
    assert Paths().archive == tmp_path / "archive"
    assert Broker().queue_name == "frontera"
    assert Broker().amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"


def test_set_variables_become_envvars_resolved_by_the_run(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv("HPCPERF_ARCHIVE_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("HPCPERF_CLUSTER", "frontera")
    made = resources()
    assert made["paths"].archive_dir == EnvVar("HPCPERF_ARCHIVE_DIR")
    assert made["paths"].home == "" and made["broker"].url == ""
    seen = {}

    @asset
    def probe(paths: Paths, broker: Broker) -> None:
        seen.update(archive=paths.archive, quarantine=paths.quarantine,
                    queue=broker.queue_name)

    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path / "home"))
    result = materialize([probe], instance=DagsterInstance.ephemeral(),
                         resources={"paths": made["paths"], "broker": made["broker"]})
    assert result.success
    assert seen == {"archive": tmp_path / "raw",
                    "quarantine": tmp_path / "home" / "quarantine", "queue": "frontera"}
