"""The code location loads as Dagster's processes load it, with nothing to ignore.

(``dagster definitions validate`` is superseded in Dagster 1.13 and says so on
stderr; the real webserver and daemon are started, and their logs checked
for warnings, in ``tests/deploy/test_dagster_stack.py``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
