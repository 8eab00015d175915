"""The demo cluster's accounting dumps: one per UTC day, parsed back to the plan."""

from __future__ import annotations

import polars as pl
from hpcperf_demo.cluster import DemoConfig, make_plan
from hpcperf_demo.generate import accounting_files

from hpcperfstats.jobs.accounting import FIELDS, parse_accounting


def parsed_days():
    cfg = DemoConfig()
    files = accounting_files(cfg)
    frames = {}
    for day, text in files.items():
        df, issues = parse_accounting(text, f"{day}.txt")
        assert issues == []
        frames[day] = df
    return cfg, frames


def test_one_file_per_utc_day_of_jobs_that_ended_that_day():
    cfg, frames = parsed_days()
    assert list(frames) == ["2026-11-20", "2026-11-21"]
    first = frames["2026-11-20"]
    assert first["end_time"].null_count() == 0
    assert first["end_time"].dt.date().cast(pl.Utf8).unique().to_list() == ["2026-11-20"]
    last = frames["2026-11-21"]
    running = last.filter(pl.col("end_time").is_null())
    assert running.height > 0 and set(running["state"]) == {"RUNNING"}


def test_midnight_job_only_in_second_days_file():
    plan = make_plan(DemoConfig())
    (night,) = plan.by_behaviour("midnight")
    _, frames = parsed_days()
    assert night.jobid not in frames["2026-11-20"]["jobid"].to_list()
    assert night.jobid in frames["2026-11-21"]["jobid"].to_list()


def test_accounting_reparses_to_the_plan():
    plan = make_plan(DemoConfig())
    _, frames = parsed_days()
    df = pl.concat(list(frames.values()))
    assert sorted(df["jobid"].to_list()) == sorted(j.jobid for j in plan.jobs)
    rows = {r["jobid"]: r for r in df.to_dicts()}
    for job in plan.jobs:
        r = rows[job.jobid]
        assert r["hosts"] == list(job.hosts)
        assert r["start_time"] == job.start and r["end_time"] == job.end
        assert r["submit_time"] == job.submit
        assert (r["state"], r["exit_code"]) == (job.state, job.exit_code)
        assert (r["elapsed_s"], r["timelimit_s"]) == (job.elapsed_s, job.timelimit_s)
        assert (r["nnodes"], r["ncpus"], r["ngpus"]) == (job.nnodes, job.ncpus, job.ngpus)
        assert r["req_mem_bytes"] == job.req_mem_bytes
        assert (r["username"], r["account"], r["jobname"]) == (job.user, job.account, job.jobname)
        assert r["jobid_raw"] == job.jobid
    # the GPU jobs' AllocTRES (typed and untyped gres/gpu) counts 4 and 2 GPUs, once
    assert [rows[j]["ngpus"] for j in ("1000048", "1000049")] == [4, 2]


def test_multi_node_hosts_written_as_compressed_node_list():
    plan = make_plan(DemoConfig())
    (job,) = plan.by_behaviour("idle_nodes")
    text = accounting_files(DemoConfig())["2026-11-20"]
    (line,) = [ln for ln in text.splitlines() if ln.startswith(job.jobid + "|")]
    assert line.split("|")[FIELDS.index("NodeList")] == "c001-[006-009]"
    (cancel,) = plan.by_behaviour("cancelled")
    (line,) = [ln for ln in text.splitlines() if ln.startswith(cancel.jobid + "|")]
    assert line.split("|")[7] == "CANCELLED by 20113"
