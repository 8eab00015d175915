"""``hpcperf job <jobid>``: text and JSON on the demo's idle-nodes job."""

from __future__ import annotations

import json

import pytest
from demo_db import DemoDB

from hpcperfstats.cli import main as hpcperf

pytestmark = pytest.mark.integration


def run(capsys, demo_db: DemoDB, *args: str) -> tuple[int, str]:
    code = hpcperf(["job", *args, "--database-url", demo_db.url])
    return code, capsys.readouterr().out


def test_text_report_of_the_idle_nodes_job(capsys, demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("idle_nodes")[0]
    code, out = run(capsys, demo_db, job.jobid)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 100  # one terminal screen
    assert lines[0].startswith(f"Job {job.jobid} (idle_nodes)  user {job.user}")
    assert "nodes 4 (c001-[006-009])  cores 64  GPUs 0" in lines[1]
    assert "ran 10:35:00 of 22:00:00" in lines[2]
    text = "\n".join(lines)
    assert "CPU efficiency         [##########----------]   50%  32.0 of 64 cores busy (node)" \
        in text
    assert "Data coverage          [####################]  100%" in text
    assert "GPU utilisation" in text and "n/a (no GPUs allocated)" in text
    assert "! 2 of your nodes did no work" in text
    assert "#SBATCH --nodes=2            # was 4: 2 node(s) did no work" in text
    assert "#SBATCH --ntasks=39" in text  # ceil(32 busy cores x 1.2)


def test_json_report_carries_the_same_numbers(capsys, demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("idle_nodes")[0]
    code, out = run(capsys, demo_db, job.jobid, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["job"]["jobid"] == job.jobid and report["job"]["ncpus"] == 64
    assert report["metrics"]["idle_nodes"]["value"] == 2
    assert report["metrics"]["cpu_efficiency"]["source"] == "node"
    assert report["coverage"]["fraction"] == 1.0 and len(report["coverage"]["hosts"]) == 4
    assert {f["flag"] for f in report["flags"]} >= {"idle_nodes", "load_imbalance"}
    assert {a["kind"]: a["line"] for a in report["advice"]}["nodes"] == "#SBATCH --nodes=2"
    assert all(len(f["rule_version"]) == 12 for f in report["flags"])


def test_memory_advice_never_exceeds_the_node(capsys, demo_db: DemoDB):
    job = demo_db.plan.by_behaviour("memory_heavy")[0]
    _, out = run(capsys, demo_db, job.jobid, "--json")
    advice = {a["kind"]: a for a in json.loads(out)["advice"]}
    # peak 57.6 GiB x 1.25 = 72 GiB > the 64 GiB node: ask for the whole node
    assert advice["memory"]["line"] == "#SBATCH --mem=0"


def test_unknown_job_is_an_error(capsys, demo_db: DemoDB):
    code = hpcperf(["job", "999", "--database-url", demo_db.url])
    assert code == 1
    assert "no job '999'" in capsys.readouterr().err
