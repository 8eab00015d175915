"""The one presentation module: units, ratios, bars, coverage and #SBATCH advice."""

from __future__ import annotations

from hpcperfstats.report import presentation as pr

GiB = 2**30


def test_item8_ratios_are_ratios_and_one_module_serves_both():
    from dashboards import advice, units

    assert pr.metric_text("mem_requested_ratio", 10342.4, "1") == "10,342x requested"
    assert pr.metric_text("time_limit_ratio", 4.04, "1") == "4.0x the run time"
    assert pr.metric_text("cpu_efficiency", 0.5, "1") == "50.0 %"  # a share stays a share
    assert pr.human(1.5 * GiB, "B") == "1.50 GiB"
    assert pr.human(2.5e9, "1/s") == "2.5 G/s"
    assert units.human is pr.human and units.metric_text is pr.metric_text
    assert advice.advice is pr.advice
    assert pr.bar(0.5) == "[##########----------]"
    assert pr.coverage_text(7, 7, 2) == "7 of 7 (+2 begin/end)"


JOB = {"ncpus": 8, "nnodes": 1, "ngpus": 0, "req_mem_bytes": 16 * GiB, "timelimit_s": 7200,
       "submit_line": None}


def lines(job: dict, values: dict, flags: list[tuple[str, str]], run_s: float) -> list[str]:
    fired = [{"flag": f, "advice": a} for f, a in flags]
    return [a["line"] for a in pr.sbatch_advice(job, values, fired, run_s)]


def test_item4_time_advice_lowers_an_overestimate_and_raises_after_a_timeout():
    over = [("time_limit_overestimated", "time")]
    # 10 min of a 2 h limit: 15 min (x1.5, to the minute)
    assert lines(JOB, {}, over, 600) == ["#SBATCH --time=00:15:00"]
    # 5 min of a 5 min step: nothing lower to say -> no line (never "raise to 15 min")
    assert lines({**JOB, "timelimit_s": 300}, {}, over, 290) == []
    reached = [("time_limit_reached", "time")]
    assert lines({**JOB, "timelimit_s": 60}, {}, reached, 88) == ["#SBATCH --time=00:02:00"]


def test_item4_cores_advice_in_the_submitted_form_and_only_when_it_changes():
    low = [("low_cpu_efficiency", "cores")]
    plain = lines(JOB, {"cpu_efficiency": 0.25}, low, 600)  # 2 of 8 busy
    assert plain == ["#SBATCH --ntasks=3"]
    per_task = {**JOB, "submit_line": "sbatch -n 2 -c 4 job.sh"}  # 2 tasks x 4 cpus
    assert lines(per_task, {"cpu_efficiency": 0.25}, low, 600) == ["#SBATCH --cpus-per-task=2"]
    one = {**JOB, "ncpus": 1, "submit_line": "sbatch -c 1 x.sh"}
    assert lines(one, {"cpu_efficiency": 0.3}, low, 600) == []  # "--cpus-per-task=1 # was 1"
    nodes = [("idle_nodes", "nodes")]
    assert lines(JOB, {"idle_nodes": 1.0}, nodes, 600) == []  # "--nodes=0": no


def test_item4_memory_advice_moves_in_the_flags_direction():
    over = [("memory_overrequested", "memory")]
    used = {"mem_hwm_bytes": 1.0 * GiB, "mem_hwm_fraction": 1.0 / 64}
    assert lines(JOB, used, over, 600) == ["#SBATCH --mem=2G"]
    small = {**JOB, "req_mem_bytes": 256 * 2**20}
    assert lines(small, {"mem_hwm_bytes": 1.5e6, "mem_hwm_fraction": 1e-4}, over, 60) == []
    per_cpu = {**JOB, "submit_line": "sbatch --mem-per-cpu=2G x.sh"}
    assert lines(per_cpu, used, over, 600) == ["#SBATCH --mem-per-cpu=256M"]
    near = [("memory_near_limit", "memory")]
    full = {"mem_hwm_bytes": 15.5 * GiB, "mem_hwm_fraction": 15.5 / 16}
    assert lines(JOB, full, near, 600) == ["#SBATCH --mem=0"]
