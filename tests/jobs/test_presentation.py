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


# --- the verdict (issue 19): the same words on the job page and in `hpcperf job` ---


def test_verdict_says_what_was_used_of_what_was_allocated():
    job = {"ncpus": 32, "nnodes": 1, "req_mem_bytes": 64 * GiB}
    # 2/32 busy: 2 of 32 cores used, 30 idle; 3.2 GiB of 64 GiB per node
    assert pr.verdict(job, {"cpu_efficiency": 2 / 32, "mem_hwm_bytes": 3.2 * GiB}) == (
        "Used 2 of 32 cores; 30 of 32 requested cores idle; "
        "peak memory 3.20 GiB of 64.0 GiB requested per node.")
    four = {"ncpus": 64, "nnodes": 4, "req_mem_bytes": 160 * GiB}
    # two of four 16-core nodes fully busy: 32 of 64; memory 160 GiB / 4 nodes = 40 GiB
    assert pr.verdict(four, {"cpu_efficiency": 0.5, "idle_nodes": 2.0,
                             "mem_hwm_bytes": 25.6 * GiB, "mem_hwm_fraction": 0.4}) == (
        "Used 32 of 64 cores; 32 of 64 requested cores idle; 2 of 4 nodes did no work; "
        "peak memory 25.6 GiB of 40.0 GiB requested per node.")
    # a busy job has no "idle" clause; a near-full node says its share
    assert pr.verdict({"ncpus": 8, "nnodes": 1}, {"cpu_efficiency": 0.95,
                                                  "mem_hwm_bytes": 60 * GiB,
                                                  "mem_hwm_fraction": 0.94}) == (
        "Used 7.6 of 8 cores; peak memory 60.0 GiB (94% of the node).")
    assert pr.verdict(four, {}, running=True, reason="still running") == (
        "No measurements yet: still running.")
    assert pr.verdict(four, {"cpu_efficiency": 0.25}, running=True).startswith(
        "So far: used 16 of 64 cores; 48 of 64")


def test_colour_follows_direction_and_the_flag_thresholds_not_the_bar_length():
    higher = "higher"
    # 100 % CPU efficiency is good (it used to be red: "over 95 % of the allocation")
    assert pr.metric_tone("cpu_efficiency", {"cpu_efficiency": 1.0}, set(), higher) == "good"
    assert pr.metric_tone("cpu_efficiency", {"cpu_efficiency": 0.3}, {"cpu_efficiency"},
                          higher) == "bad"
    # busy cores per node are judged with the efficiency they are an amount of
    values = {"cpu_cores_avg": 1.2, "cpu_efficiency": 0.04}
    assert pr.metric_tone("cpu_cores_avg", values, {"cpu_efficiency"}, higher) == "bad"
    assert pr.metric_tone("mem_hwm_bytes", {"mem_hwm_bytes": 9.0}, set()) == "good"
    assert pr.metric_tone("net_bw_avg", {"net_bw_avg": 1e6}, set()) == "neutral"
    assert pr.metric_tone("gpu_util", {"gpu_util": None}, set(), higher) == "none"


def test_metrics_by_importance_and_missing_ones_folded_by_reason():
    from hpcperfstats.jobs.metrics import METRICS

    assert sorted(pr.METRIC_ORDER) == sorted(METRICS)  # every metric has its place
    order = sorted(["energy_j", "net_bw_avg", "gpu_util", "mem_hwm_bytes", "cpu_efficiency",
                    "lustre_read_bw_avg"], key=pr.metric_rank)
    assert order == ["cpu_efficiency", "mem_hwm_bytes", "gpu_util", "lustre_read_bw_avg",
                     "net_bw_avg", "energy_j"]
    assert pr.missing_line([("GPU utilisation", "no GPUs allocated"),
                            ("FLOPS per node", "no data"),
                            ("GPU memory", "no GPUs allocated")]) == (
        "No value: GPU utilisation, GPU memory — no GPUs allocated; FLOPS per node — no data.")
    assert pr.missing_line([]) == ""


def test_state_banners_and_flag_order():
    assert pr.state_banner("FAILED", "1:0") == (
        "bad", "Failed: the job ended with exit code 1:0.")
    assert pr.state_banner("CANCELLED by 1234", "0:15")[0] == "warn"
    assert pr.state_banner("COMPLETED", "0:0") is None
    metric_of = {"low_cpu_efficiency": "cpu_efficiency", "memory_near_limit": "mem_hwm_fraction",
                 "idle_nodes": "idle_nodes", "time_limit_overestimated": "time_limit_ratio"}
    flags = [{"flag": f} for f in ("time_limit_overestimated", "low_cpu_efficiency",
                                   "memory_near_limit", "idle_nodes")]
    assert [f["flag"] for f in pr.order_flags(flags, metric_of)] == [
        "memory_near_limit", "low_cpu_efficiency", "idle_nodes", "time_limit_overestimated"]
