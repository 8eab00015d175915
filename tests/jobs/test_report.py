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
    report = out.split("\nJob script:\n")[0].splitlines()  # the script follows the report
    assert len(report) <= 40 and max(map(len, report)) <= 100  # one terminal screen
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


def test_gpu_job_shows_its_gpu_hours_and_its_script(capsys, demo_db: DemoDB):
    """The demo's training job 1000048, by hand: 4 GPUs for 6 h = 24.0 GPU-hours, busy
    (92 + 88 + 95 + 85) % of 400 % = 90 %, peak GPU memory 60 + 58 + 62 + 56 = 236 GiB:
    what its page shows (accounting facts, metrics), in the text and the JSON, and the
    job script it was submitted with (the local report: database credentials, staff's
    view)."""
    from hpcperf_demo.generate import job_script

    (train,) = demo_db.plan.by_behaviour("gpu_training")
    assert train.jobid == "1000048"
    code, out = run(capsys, demo_db, train.jobid, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["gpu"] == {"gpus": 4, "gpu_hours": 24.0, "utilisation": pytest.approx(0.9),
                             "memory_hwm_bytes": 236 * 2**30, "reason": None}
    script = job_script(train, demo_db.plan.jobs.index(train))
    assert report["script"]["status"] == "shown" and report["script"]["script"] == script
    assert "#SBATCH --gres=gpu:h100:4" in script
    code, text = run(capsys, demo_db, train.jobid)
    assert ("  GPU utilisation        [##################--]   90%  of 4 GPUs, 24.0 GPU-hours"
            in text.splitlines())
    assert "  GPU memory high-water mark per node: 236.0 GiB" in text.splitlines()
    assert [f"  | {line}" for line in script.splitlines()] == \
        text.splitlines()[-len(script.splitlines()):]
    # the report proper stays one screen; the script follows it
    report_part = text.split("\nJob script:\n")[0].splitlines()
    assert len(report_part) <= 40 and max(map(len, report_part)) <= 100


def test_a_job_without_gpus_says_only_why(capsys, demo_db: DemoDB):
    (cpu,) = demo_db.plan.by_behaviour("cpu_bound")
    _, out = run(capsys, demo_db, cpu.jobid, "--json")
    assert json.loads(out)["gpu"] == {"gpus": 0, "gpu_hours": None, "utilisation": None,
                                      "memory_hwm_bytes": None, "reason": "no GPUs allocated"}
    _, text = run(capsys, demo_db, cpu.jobid)
    assert "GPU-hours" not in text and "n/a (no GPUs allocated)" in text
