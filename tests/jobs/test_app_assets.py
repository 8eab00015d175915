"""``job_applications`` in Dagster over the demo cluster's archive: rows, and a rule
change that marks history stale and recomputes it with the new version."""

from __future__ import annotations

import importlib

import psycopg
import pytest
from dagster import DagsterInstance, materialize
from dagster._core.definitions.data_version import CODE_VERSION_TAG, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from demo_db import load_demo
from hpcperf_demo.cluster import APPS
from hpcperf_demo.generate import APP_EXES, job_app

from hpcperf_dagster.resources import Database, Paths
from hpcperfstats.apps.rules import DEFAULT_RULES, app_rules_version

DAY = "2026-11-20"
CP2K = "/opt/apps/cp2k/2024.1/exe/local/cp2k.psmp"
pytestmark = pytest.mark.integration


def _asset():
    """The asset as a fresh code location would load it (its code version is read at import)."""
    import hpcperf_assets.job_applications as module

    return importlib.reload(module).job_applications


@pytest.fixture
def reload_after(monkeypatch):
    """Leave the module as the default rules file makes it for the tests after this one."""
    yield
    monkeypatch.delenv("HPCPERF_APP_RULES", raising=False)
    _asset()


def _rows(url: str) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT jobid, application, executable, share, basis, cluster,"
                            " rule_version, known FROM job_applications").fetchall()
    return {(r[0], r[2]): r for r in rows}


def test_a_rule_change_marks_history_stale_and_the_backfill_recomputes_it(
        hpcperf_env, pg_url, tmp_path, monkeypatch, reload_after):
    with psycopg.connect(pg_url) as conn:  # the session database: other tests' jobs out
        conn.execute("TRUNCATE job_data, job_applications")
    monkeypatch.setenv("HPCPERF_CLUSTER", "stampede-demo")  # the jobs are loaded under it
    demo = load_demo(pg_url, hpcperf_env)
    rules = tmp_path / "apps.yaml"
    rules.write_text(DEFAULT_RULES.read_text())
    monkeypatch.setenv("HPCPERF_APP_RULES", str(rules))
    before = _asset()
    instance = DagsterInstance.ephemeral()
    resources = {"db": Database(), "paths": Paths()}

    assert materialize([before], partition_key=DAY, instance=instance,
                       resources=resources).success
    first = _rows(pg_url)
    version_a = app_rules_version(rules)
    assert {r[6] for r in first.values()} == {version_a}
    assert {r[5] for r in first.values()} == {"stampede-demo"}
    assert {r[4] for r in first.values()} == {"cpu"}  # the demo writes procexe

    # worked by hand: on each node the job's 4 ranks share its busy CPU time, the
    # batch script adds 2 cs per 300 s interval; the cpu_bound job keeps every core
    # busy, so its application's share is c*300*100 / (c*300*100 + 2) on every node
    index, job = next((i, j) for i, j in enumerate(demo.plan.jobs) if j.behaviour == "cpu_bound")
    app = job_app(job, index)
    busy = demo.cfg.cpus_per_node * demo.cfg.interval * 100
    assert first[(job.jobid, APP_EXES[app])][3] == pytest.approx(busy / (busy + 2))
    assert first[(job.jobid, "/usr/bin/bash")][1] == "shell"
    ended = {j.jobid for j in demo.plan.jobs if j.end and j.end.date().isoformat() == DAY}
    assert {k[0] for k in first} == ended  # every job of the day, none of the next
    for jobid in ended:
        shares = [r[3] for k, r in first.items() if k[0] == jobid]
        assert sum(shares) == pytest.approx(1.0)
    cp2k_jobs = {k[0] for k, r in first.items() if k[1] == CP2K}
    assert "cp2k" in APPS and cp2k_jobs  # the demo runs a code no default rule names
    assert {first[(j, CP2K)][1] for j in cp2k_jobs} == {"unknown"}

    # staff add a rule: Dagster sees a new code version, the materialised day is stale
    rules.write_text("rules:\n  - {name: CP2K, category: chemistry, exe: ['cp2k.*']}\n"
                     + DEFAULT_RULES.read_text().split("rules:\n", 1)[1])
    after = _asset()
    version_b = app_rules_version(rules)
    assert after.code_versions_by_key[after.key] == version_b != version_a
    resolver = get_stale_status_resolver(instance, [after])
    assert resolver.get_status(after.key, DAY) == StaleStatus.STALE
    causes = resolver.get_stale_causes(after.key, DAY)
    assert any("code version" in c.reason for c in causes)

    assert materialize([after], partition_key=DAY, instance=instance,
                       resources=resources).success
    second = _rows(pg_url)
    assert set(second) == set(first)  # the same jobs and executables, renamed
    assert {second[(j, CP2K)][1] for j in cp2k_jobs} == {"CP2K"}
    assert all(second[(j, CP2K)][7] for j in cp2k_jobs)
    assert {r[6] for r in second.values()} == {version_b}
    events = instance.fetch_materializations(after.key, limit=10).records
    assert [e.asset_materialization.tags[CODE_VERSION_TAG] for e in events] == [
        version_b, version_a]  # newest first: the lineage of the recomputation
    assert get_stale_status_resolver(instance, [after]).get_status(after.key, DAY) == \
        StaleStatus.FRESH
