"""The code location loads as Dagster's processes load it, with nothing to ignore.

(``dagster definitions validate`` is superseded in Dagster 1.13 and says so on
stderr; the real webserver and daemon are started, and their logs checked
for warnings, in ``tests/deploy/test_dagster_stack.py``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from dagster import AssetKey, DefaultSensorStatus

REPO = Path(__file__).resolve().parents[2]


LOAD = """
from hpcperf_dagster.definitions import defs
repo = defs.get_repository_def()
graph = defs.resolve_asset_graph()
print(len(repo.get_all_jobs()), len(repo.sensor_defs), len(repo.schedule_defs),
      len(graph.get_all_asset_keys()))
"""


def test_code_location_loads_without_warnings(tmp_path):
    """Every definition built in a fresh process, as a code server does: stderr is empty."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path),
             "HPCPERF_HOME": str(tmp_path / "home")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # 7 jobs (alerts_job too) + the implicit asset job; 13 assets (applications, alerts,
    # the job_series rollup)
    assert out.stdout.split() == ["8", "4", "3", "13"]
    assert out.stderr == ""


#: what Dagster does with a workspace entry ``python_module: hpcperf_dagster.locations,
#: attribute: <cluster>`` in the location's own process
LOAD_LOCATION = """
import sys
import hpcperf_dagster.locations as locations
defs = getattr(locations, sys.argv[1])
repo = defs.get_repository_def()
graph = defs.resolve_asset_graph()
print(len(repo.get_all_jobs()), len(repo.sensor_defs), len(repo.schedule_defs),
      len(graph.get_all_asset_keys()))
print(" ".join(sorted(k.to_user_string() for k in graph.get_all_asset_keys())))
print(" ".join(sorted([j.name for j in defs.jobs] + [s.name for s in defs.sensors]
                      + [s.name for s in defs.schedules])))
from dagster import AssetKey
host_data = AssetKey([sys.argv[1].replace("-", "_"), "host_data"])
print(graph.get(host_data).partitions_def.start.isoformat())
try:
    getattr(locations, "stampede3" if sys.argv[1] != "stampede3" else "ls-6")
except RuntimeError as exc:
    print("refused:", exc)
"""


def test_each_cluster_is_its_own_code_location(tmp_path):
    """Two clusters from one clusters file: each location loads alone in its own process,
    without warnings, with the same definitions under its own prefix and partition start,
    and refuses to serve a second cluster in the same process."""
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("clusters:\n  stampede3: {}\n"
                        "  ls-6: {partition_start: 2026-03-01}\n")
    env = {"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path),
           "HPCPERF_HOME": str(tmp_path / "home"), "HPCPERF_CLUSTERS_FILE": str(clusters),
           "HPCPERF_PARTITION_START": "2026-01-01"}
    seen = {}
    for cluster, prefix, start in (("stampede3", "stampede3", "2026-01-01"),
                                   ("ls-6", "ls_6", "2026-03-01")):
        out = subprocess.run([sys.executable, "-c", LOAD_LOCATION, cluster], cwd=REPO,
                             capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stderr == ""
        counts, keys, names, first, refused = out.stdout.splitlines()
        assert counts.split() == ["8", "4", "3", "13"]  # as the single location's
        keys, names = keys.split(), names.split()
        assert all(k.startswith(f"{prefix}/") for k in keys)
        assert {f"{prefix}/host_data", f"{prefix}/raw_stats_archive",
                f"{prefix}/job_metrics"} <= set(keys)
        assert all(n.startswith(f"{prefix}_") for n in names)
        assert {f"{prefix}_drain_job", f"{prefix}_job_days_sensor",
                f"{prefix}_archive_day_schedule"} <= set(names)
        assert first.startswith(start)  # the cluster's own partition_start
        assert refused.startswith("refused: this process already serves cluster")
        seen[cluster] = set(keys) | set(names)
    assert not seen["stampede3"] & seen["ls-6"]  # nothing shared in one Dagster instance


def test_workspace_lists_one_location_per_cluster(tmp_path, monkeypatch):
    from hpcperf_dagster.locations import main, workspace

    monkeypatch.delenv("HPCPERF_CLUSTERS_FILE", raising=False)
    # a single-cluster site: the one location, unprefixed, as the repository's file says
    single = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace() == single
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("clusters:\n  stampede3: {}\n  frontera: {queue: fr}\n")
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(clusters))
    assert workspace()["load_from"] == [
        {"python_module": {"module_name": "hpcperf_dagster.locations", "attribute": name,
                           "working_directory": ".", "location_name": name}}
        for name in ("stampede3", "frontera")]
    out = tmp_path / "workspace.yaml"
    assert main(["-o", str(out), "--grpc-host", "pipeline-code", "--grpc-port", "4000"]) == 0
    assert yaml.safe_load(out.read_text())["load_from"] == [
        {"grpc_server": {"host": "pipeline-code", "port": 4000, "location_name": "stampede3"}},
        {"grpc_server": {"host": "pipeline-code", "port": 4001, "location_name": "frontera"}}]


def test_definitions_hold_every_stage():
    from hpcperf_dagster.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_stats_archive", "host_data", "slurm_jobs", "job_metrics"} <= keys
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"rabbitmq_sensor", "automation_sensor", "accounting_sensor",
                            "job_days_sensor"}
    # every trigger runs without a click in `dagster-daemon` and the demo
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    # the automation ticks less often than the drain's sensor: fewer host_data runs
    assert sensors["automation_sensor"].minimum_interval_seconds == 120
    assert sensors["rabbitmq_sensor"].minimum_interval_seconds == 30
    assert {s.name for s in defs.schedules} == {"job_tables_schedule", "archive_day_schedule",
                                               "alerts_schedule"}
    names = [j.name for j in defs.jobs]
    assert all(name.endswith("_job") for name in names), names


def test_job_metrics_is_an_asset_a_person_can_select_alone():
    from hpcperf_dagster.definitions import defs

    job_tables = defs.resolve_assets_def("job_metrics")
    assert job_tables.can_subset
    assert job_tables.subset_for({AssetKey("job_metrics")}, selected_asset_check_keys=None
                                 ).keys == {AssetKey("job_metrics")}


#: the one exception: it checks dagster.yaml with the instance-config schema and
#: the run queue's tag-limit counter, which Dagster does not export
#: tests only, for what Dagster exports no public form of: the instance config
#: schema and run-queue counters, a run record made by hand, a partition's
#: staleness (code versions)
INTERNALS_ALLOWED = {"tests/deploy/test_dagster_config.py", "tests/integration/test_definitions.py",
                     "tests/demo/test_demo_settled.py", "tests/jobs/test_app_assets.py"}


def test_no_import_from_dagster_internals():
    sources = [p for d in ("hpcperf_dagster", "assets", "hpcperfstats", "dashboards", "demo",
                           "tests", "benchmarks", "monitor") for p in (REPO / d).rglob("*.py")
               if "node_modules" not in p.parts]
    offenders = [str(p.relative_to(REPO)) for p in sources
                 if "dagster._" in p.read_text(errors="replace")]
    assert sorted(set(offenders) - INTERNALS_ALLOWED) == []
