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


# --- issue 19: GPUs and the job script, the same in the terminal, the API and the page ---

#: a job script that would take over a terminal: clear the screen (CSI 2J), set the
#: clipboard (OSC 52, BEL-ended), overwrite a line with a carriage return, hide text
#: behind an 8-bit CSI, and NUL and DEL bytes
TERMINAL_HOSTILE = ("#!/bin/bash\n\x1b[2J\x1b[H#SBATCH --nodes=1\n"
                    "\x1b]52;c;cm0gLXJmIH4K\x07echo hi\n"
                    "rm -rf ~/data\rsafe line\n\x9b31mred\x00\x7f\n\tsrun ./a.out\n")


def test_printable_neutralises_escapes_overwrites_and_nul():
    shown = pr.printable(TERMINAL_HOSTILE, keep="\n\t")
    assert not any(ch in shown for ch in "\x1b\x07\r\x00\x7f\x9b")
    assert shown == ("#!/bin/bash\n\\x1b[2J\\x1b[H#SBATCH --nodes=1\n"
                     "\\x1b]52;c;cm0gLXJmIH4K\\x07echo hi\n"
                     "rm -rf ~/data\\x0dsafe line\n\\x9b31mred\\x00\\x7f\n\tsrun ./a.out\n")
    assert pr.printable("a\tb\n") == "a\\x09b\\x0a"  # nothing kept unless asked
    assert pr.printable("Grüße, 名前 ü") == "Grüße, 名前 ü"  # printable text as it is
    from dashboards import layout

    assert layout.printable is pr.printable  # one rule for pages, logs and terminals


def test_gpu_summary_and_text_by_hand():
    # the demo's training job: 4 GPUs for 6 h = 24.0 GPU-hours; (92+88+95+85) % of 400 %
    train = {"ngpus": 4, "elapsed_s": 6 * 3600}
    summary = pr.gpu_summary(train, {"gpu_util": 3.6 / 4, "gpu_mem_hwm_bytes": 236 * GiB})
    assert summary == {"gpus": 4, "gpu_hours": 24.0, "utilisation": 0.9,
                       "memory_hwm_bytes": 236 * GiB, "reason": None}
    assert pr.gpu_text(summary) == "4 GPUs, 24.0 GPU-hours, busy 90.0 %, peak GPU memory " \
        "236.0 GiB"
    assert pr.gpu_text(summary, measured=False) == "4 GPUs, 24.0 GPU-hours"
    assert pr.gpu_hours_text(train) == "24.0"
    # 1 GPU, 90 minutes, no measurement yet: what is known, nothing invented
    assert pr.gpu_text(pr.gpu_summary({"ngpus": 1, "elapsed_s": 5400}, {})) == \
        "1 GPU, 1.5 GPU-hours"
    # no GPUs: the metrics' reason and nothing else (no 0 GPU-hours, no 0 % busy)
    for job in ({"ngpus": 0, "elapsed_s": 3600}, {"ngpus": None, "elapsed_s": 3600}):
        none = pr.gpu_summary(job, {"gpu_util": None})
        assert none == {"gpus": 0, "gpu_hours": None, "utilisation": None,
                        "memory_hwm_bytes": None, "reason": "no GPUs allocated"}
        assert pr.gpu_text(none) == "no GPUs allocated" and pr.gpu_hours_text(job) == "—"


def test_script_entry_shows_the_text_only_to_those_allowed():
    row = {"script": "#!/bin/bash\nsecret-token-123\n", "size_bytes": 29, "truncated": False,
           "problem": None}
    shown = pr.script_entry(row, True)
    assert shown == {"status": "shown", "script": row["script"], "size_bytes": 29,
                     "truncated": False, "note": ""}
    hidden = pr.script_entry(row, False)  # an account-mate: the sentence, nothing of it
    assert hidden == {"status": "hidden", "script": None, "size_bytes": None,
                      "truncated": None, "note": pr.NOT_YOURS}
    assert pr.script_entry(None, True)["note"] == pr.NO_SCRIPT
    aside = pr.script_entry({"script": None, "size_bytes": 9, "truncated": False,
                             "problem": "contains NUL bytes (first at byte 3)"}, True)
    assert aside["status"] == "set_aside" and aside["script"] is None
    assert "set aside, not shown: it contains NUL bytes (first at byte 3)" in aside["note"]
    cut = pr.script_entry({"script": "a" * 10, "size_bytes": 3 * 2**20, "truncated": True,
                           "problem": None}, True)
    assert cut["note"] == ("Only the first 10 B of 3.00 MiB are stored "
                           "(HPCPERF_JOB_SCRIPT_MAX_BYTES).")


def test_terminal_report_neutralises_hostile_text():
    """A job name and a script full of escape sequences reach the terminal as visible
    text: no ESC, BEL, CR or NUL byte is written, and the script's lines cannot pass
    for the report's own (each is behind ``  | ``)."""
    from hpcperfstats.report.terminal import render_text

    job = {"jobid": "7", "jobname": "x\x1b[2Jy", "username": "u", "account": "a",
           "partition": "p", "state": "COMPLETED", "exit_code": "0:0", "nnodes": 1,
           "nodelist": "c1", "ncpus": 4, "ngpus": 0, "start_time": "2026-01-01T00:00:00+00:00",
           "end_time": "2026-01-01T01:00:00+00:00", "timelimit_s": 7200, "elapsed_s": 3600,
           "req_mem_bytes": GiB}
    report = {"job": job, "metrics": {}, "flags": [], "advice": [], "applications": [],
              "coverage": {"fraction": None, "hosts": [], "present": 0, "expected": 0},
              "banner": None, "verdict": "No measurements yet: no data.",
              "gpu": pr.gpu_summary(job, {}),
              "script": pr.script_entry({"script": TERMINAL_HOSTILE, "size_bytes": 99,
                                         "truncated": False, "problem": None}, True)}
    text = render_text(report)
    assert not any(ch in text for ch in "\x1b\x07\r\x00\x7f\x9b\t")
    lines = text.splitlines()
    assert lines[0].startswith("Job 7 (x\\x1b[2Jy)")
    assert "GPU utilisation" in text and "n/a (no GPUs allocated)" in text
    start = lines.index("Job script:")
    assert lines[start + 1:] == [
        "  | #!/bin/bash", "  | \\x1b[2J\\x1b[H#SBATCH --nodes=1",
        "  | \\x1b]52;c;cm0gLXJmIH4K\\x07echo hi", "  | rm -rf ~/data\\x0dsafe line",
        "  | \\x9b31mred\\x00\\x7f", "  |         srun ./a.out"]
    hidden = render_text({**report, "script": pr.script_entry(None, False)})
    assert hidden.splitlines()[-1] == pr.NOT_YOURS and "  | " not in hidden
