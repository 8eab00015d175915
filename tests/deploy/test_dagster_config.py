"""The Dagster instance and workspace files load with Dagster's own schemas.

``dagster.yaml`` (development, SQLite) is loaded into a real instance in a
temporary DAGSTER_HOME; ``deploy/dagster.yaml`` (production, PostgreSQL) is
validated with the instance config schema and, against the embedded
PostgreSQL of the test session, used to run and record a real materialisation
(this is what catches the psycopg 3 scheme trap of DESIGN.md).
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import DagsterInstance, asset, materialize
from dagster._config import Shape, process_config
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import (
    dagster_instance_config,
    dagster_instance_config_schema,
)
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._utils.tags import TagConcurrencyLimitsCounter

REPO = Path(__file__).resolve().parents[2]
DEV_YAML = REPO / "dagster.yaml"
PROD_YAML = REPO / "deploy" / "dagster.yaml"
WORKSPACE_YAML = REPO / "workspace.yaml"
DRAIN_TAG = {"hpcperf/drain": "true"}
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")


def _home_with(tmp_path: Path, source: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(source, home / "dagster.yaml")
    return home


@pytest.fixture
def dev_instance(tmp_path, monkeypatch):
    home = _home_with(tmp_path, DEV_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.from_config(str(home))
    yield instance
    instance.dispose()


def test_dev_instance_uses_sqlite_under_dagster_home(dev_instance):
    assert type(dev_instance.run_storage).__name__ == "SqliteRunStorage"
    assert type(dev_instance.event_log_storage).__name__.startswith("SqliteEventLogStorage")
    assert dev_instance.get_runs() == []
    assert Path(dev_instance.root_directory, "history").is_dir()


def test_dev_instance_settings(dev_instance):
    assert dev_instance.telemetry_enabled is False
    assert isinstance(dev_instance.run_coordinator, QueuedRunCoordinator)
    queue = dev_instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 2
    assert queue.tag_concurrency_limits[0] == {"key": "hpcperf/drain", "value": "true", "limit": 1}
    sensor = dev_instance.get_tick_retention_settings(InstigatorType.SENSOR)
    assert sensor[TickStatus.SKIPPED] == 1
    assert sensor[TickStatus.STARTED] == -1  # a tick in progress is never purged
    schedule = dev_instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
    assert all(days > 0 for days in schedule.values())


def test_second_drain_is_held_back_but_other_runs_are_not(dev_instance):
    limits = dev_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    running_drain = DagsterRun(job_name="drain_job", run_id="a" * 8, tags=DRAIN_TAG)
    counter = TagConcurrencyLimitsCounter(limits, [running_drain])
    assert counter.is_blocked(DagsterRun(job_name="drain_job", run_id="b" * 8, tags=DRAIN_TAG))
    assert not counter.is_blocked(DagsterRun(job_name="hourly", run_id="c" * 8, tags={}))
    idle = TagConcurrencyLimitsCounter(limits, [])
    assert not idle.is_blocked(DagsterRun(job_name="drain_job", run_id="d" * 8, tags=DRAIN_TAG))


@pytest.mark.parametrize("source", [DEV_YAML, PROD_YAML], ids=["dev", "prod"])
def test_one_ingest_run_per_partition_at_a_time(source, tmp_path, monkeypatch):
    """A rerun of an hour waits for the run replacing that hour; other hours go ahead."""
    home = _home_with(tmp_path, source)
    _set_prod_env(monkeypatch, tmp_path)
    limits = _resolved(home)["run_queue"]["tag_concurrency_limits"]

    def run(run_id: str, **tags: str) -> DagsterRun:
        return DagsterRun(job_name="host_data_job", run_id=run_id, tags=tags)

    hour = {"dagster/partition": "2026-03-18-05:00"}
    ranged = {"dagster/asset_partition_range_start": "2026-03-18-05:00",
              "dagster/asset_partition_range_end": "2026-03-18-09:00"}
    busy = TagConcurrencyLimitsCounter(limits, [run("a" * 8, **hour), run("b" * 8, **ranged)])
    assert busy.is_blocked(run("c" * 8, **hour))
    assert busy.is_blocked(run("d" * 8, **ranged))
    assert not busy.is_blocked(run("e" * 8, **{"dagster/partition": "2026-03-18-06:00"}))
    assert not busy.is_blocked(run("f" * 8, **{
        "dagster/asset_partition_range_start": "2026-03-18-10:00",
        "dagster/asset_partition_range_end": "2026-03-18-11:00"}))
    assert not busy.is_blocked(run("g" * 8))  # unpartitioned runs are not held


def _set_prod_env(monkeypatch, tmp_path: Path, url: str = "postgresql://u:p@db:5432/d") -> None:
    parts = urlsplit(url)
    monkeypatch.setenv("DAGSTER_PG_HOST", parts.hostname or "")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", parts.username or "")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", parts.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", parts.path.lstrip("/"))
    monkeypatch.setenv("DAGSTER_MAX_CONCURRENT_RUNS", "4")
    monkeypatch.setenv("DAGSTER_DATA_DIR", str(tmp_path / "dagster_data"))


def _resolved(home: Path) -> dict:
    """Validate like DagsterInstance does, then resolve ``env:`` sources."""
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    result = process_config(Shape(dagster_instance_config_schema()), dict(config))
    if not result.success:
        raise DagsterInvalidConfigError("instance config", result.errors, config)
    coordinator = result.value["run_coordinator"]
    queue = process_config(Shape(QueuedRunCoordinator.config_type()), coordinator["config"])
    if not queue.success:
        raise DagsterInvalidConfigError("run coordinator config", queue.errors, coordinator)
    return {**result.value, "run_queue": queue.value}


def test_prod_config_validates_and_reads_postgres_from_env(tmp_path, monkeypatch):
    home = _home_with(tmp_path, PROD_YAML)
    _set_prod_env(monkeypatch, tmp_path, "postgresql://dagster:s3cret@db.example:6543/dagster")
    config = _resolved(home)
    pg = config["storage"]["postgres"]["postgres_db"]
    assert pg["hostname"] == "db.example"
    assert pg["port"] == 6543
    assert pg["username"] == "dagster"
    assert pg["password"] == "s3cret"
    assert pg["db_name"] == "dagster"
    assert pg["scheme"] == "postgresql+psycopg2"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_queue"]["max_concurrent_runs"] == 4
    limits = config["run_queue"]["tag_concurrency_limits"]
    assert {"key": "hpcperf/drain", "value": "true", "limit": 1} in limits
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"


@pytest.mark.parametrize("missing", PG_ENV + ("DAGSTER_MAX_CONCURRENT_RUNS",))
def test_prod_config_refuses_to_load_without_its_env(tmp_path, monkeypatch, missing):
    home = _home_with(tmp_path, PROD_YAML)
    _set_prod_env(monkeypatch, tmp_path)
    monkeypatch.delenv(missing)
    with pytest.raises(DagsterInvalidConfigError) as info:
        _resolved(home)
    assert missing in str(info.value.errors)


@pytest.mark.integration
def test_prod_instance_records_a_run_in_postgres(tmp_path, monkeypatch, pg_server):
    """A real instance from deploy/dagster.yaml stores runs and events in PostgreSQL."""
    db = f"dagster_{tmp_path.name.lower().replace('-', '_')}"[:60]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = urlsplit(pg_server)._replace(path=f"/{db}").geturl()
    home = _home_with(tmp_path, PROD_YAML)
    _set_prod_env(monkeypatch, tmp_path, url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    @asset
    def probe() -> int:
        return 42

    instance = DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize([probe], instance=instance)
        assert result.success
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert instance.get_latest_materialization_event(probe.key) is not None
    finally:
        instance.dispose()
    with psycopg.connect(url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert count == 1
    assert (tmp_path / "dagster_data" / "storage").is_dir()  # IO manager output on the volume


def test_workspace_loads_the_project_code_location():
    (origin,) = location_origins_from_yaml_paths([str(WORKSPACE_YAML)])
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert origin.location_name == pyproject["code_location_name"]
    target = origin.loadable_target_origin
    assert target.module_name == pyproject["module_name"] == "hpcperf_dagster.definitions"
    assert target.working_directory == "."  # run dagster from the repository root


def test_second_cluster_workspace_loads_two_code_servers_named_after_the_clusters(
        monkeypatch):
    """deploy/workspace.second-cluster.yaml, read by Dagster's own loader with the
    daemon's settings (compose.second-cluster.yaml)."""
    monkeypatch.setenv("DAGSTER_CODE_HOST", "pipeline-code")
    monkeypatch.setenv("DAGSTER_CODE_PORT", "4000")
    monkeypatch.setenv("HPCPERF_CLUSTER", "stampede3")
    monkeypatch.setenv("HPCPERF_SECOND_CLUSTER", "frontera")
    origins = location_origins_from_yaml_paths(
        [str(REPO / "deploy" / "workspace.second-cluster.yaml")])
    assert [(o.location_name, o.host, o.port) for o in origins] == [
        ("stampede3", "pipeline-code", 4000), ("frontera", "pipeline-code-second", 4000)]
