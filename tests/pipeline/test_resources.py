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


def test_each_clusters_location_gets_its_own_queue_and_folders(monkeypatch, tmp_path):
    """With a clusters file, a location's resources are its cluster's entry: the second
    cluster's code server shares HPCPERF_ARCHIVE_DIR and HPCPERF_CLUSTER-named queues
    with nobody (the variables name the first cluster's)."""
    _clear(monkeypatch)
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("clusters:\n  stampede3: {}\n  frontera: {queue: fr-stats}\n")
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(clusters))
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HPCPERF_ARCHIVE_DIR", str(tmp_path / "raw"))  # the first's
    seen = {}
    for name in ("stampede3", "frontera"):
        monkeypatch.setenv("HPCPERF_CLUSTER", name)
        made = resources()
        seen[name] = (made["paths"].archive, made["paths"].quarantine,
                      made["paths"].accounting, made["broker"].queue_name)
    home = tmp_path / "home"
    assert seen["stampede3"] == (tmp_path / "raw", home / "quarantine", home / "accounting",
                                 "stampede3")
    assert seen["frontera"] == (home / "clusters" / "frontera" / "archive",
                                home / "clusters" / "frontera" / "quarantine",
                                home / "clusters" / "frontera" / "accounting", "fr-stats")
