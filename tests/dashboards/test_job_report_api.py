"""The demo's GPU job in the data API and ``hpcperf job --url``: what its page shows.

Worked out from the plan (``hpcperf_demo``'s ``GPU_JOBS``): the training job 1000048
holds 4 GPUs for 6 h = 24.0 GPU-hours, busy (92 + 88 + 95 + 85) % of 400 % = 90 %,
60 + 58 + 62 + 56 = 236 GiB of GPU memory in use. A job without GPUs has only the
reason. Over the shared demo session (``demo_web``, ``HPCPERF_AUTH=none``: staff).
"""

from __future__ import annotations

import json

import psycopg
import pytest
from bokeh_client import get
from hpcperf_demo.generate import job_script

from dashboards import data
from dashboards.pages.job import facts

pytestmark = pytest.mark.integration
GiB = 2**30


def _job(base: str, jobid: str) -> dict:
    got = get(f"{base}/api/v1/jobs/{jobid}", {})
    assert got.status == 200
    return json.loads(got.body)


def test_gpu_job_in_the_api_and_the_terminal_as_on_its_page(demo_web, monkeypatch, capsys):
    from hpcperfstats.cli import main as hpcperf

    base, demo = demo_web
    (train,) = demo.plan.by_behaviour("gpu_training")
    assert train.jobid == "1000048"
    body = _job(base, train.jobid)
    assert body["gpu"] == {"gpus": 4, "gpu_hours": 24.0, "utilisation": pytest.approx(0.9),
                           "memory_hwm_bytes": 236 * GiB, "reason": None}
    script = job_script(train, demo.plan.jobs.index(train))
    assert body["script"]["status"] == "shown" and body["script"]["script"] == script
    with psycopg.connect(demo.url) as conn:  # the page's accounting facts: the same hours
        page = facts(data.job_record(conn, train.jobid, data.STAFF), data.STAFF).object
    assert "<th>GPUs</th><td>4</td>" in page and "<th>GPU-hours</th><td>24.0</td>" in page
    monkeypatch.delenv("HPCPERF_API_TOKEN", raising=False)
    assert hpcperf(["job", train.jobid, "--url", base]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  GPU utilisation        [##################--]   90%  of 4 GPUs, 24.0 GPU-hours" \
        in lines
    assert "  GPU memory high-water mark per node: 236.0 GiB" in lines
    assert "  | #SBATCH --gres=gpu:h100:4" in lines


def test_a_job_without_gpus_has_only_the_reason(demo_web, capsys):
    from hpcperfstats.cli import main as hpcperf

    base, demo = demo_web
    (cpu,) = demo.plan.by_behaviour("cpu_bound")
    assert _job(base, cpu.jobid)["gpu"] == {
        "gpus": 0, "gpu_hours": None, "utilisation": None, "memory_hwm_bytes": None,
        "reason": "no GPUs allocated"}
    assert hpcperf(["job", cpu.jobid, "--url", base]) == 0
    out = capsys.readouterr().out
    assert "n/a (no GPUs allocated)" in out and "GPU-hours" not in out
