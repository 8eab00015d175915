"""``hpcperf job <jobid>``: one terminal screen telling a researcher how their job ran.

In the spirit of Princeton's ``jobstats``: the job's facts, each measured
number next to what was allocated (with a bar), the data coverage, the flags
in plain words, and the ``#SBATCH`` lines to change with the numbers. It
reads the tables the pipeline wrote (job_data, job_metrics, job_coverage,
job_flags): the same database the dashboards read. ``--json`` gives the same
content to scripts. Text from people (job names, messages, the job script) is
printed with its control characters as visible ``\\xNN`` escapes
(``presentation.printable``): a job name or script cannot clear the screen, set
the clipboard (OSC 52) or overwrite a line with ``\\r``, whether it comes from the
database or a remote server's API.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime

import polars as pl
import psycopg

from hpcperfstats.apps.detect import by_application
from hpcperfstats.config import cluster_name
from hpcperfstats.flags.rules import rule_metrics
from hpcperfstats.jobs.metrics import METRICS
from hpcperfstats.report.presentation import (
    BAR,
    FLAGS_HEADING,
    NO_FLAGS,
    SBATCH_HEADING,
    GiB,
    bar,
    coverage_text,
    gpu_summary,
    gpu_text,
    metric_rank,
    metric_text,
    order_flags,
    printable,
    run_seconds,
    sbatch_advice,
    sbatch_text,
    script_entry,
    source_note,
    state_banner,
    verdict,
)
from hpcperfstats.report.presentation import slurm_duration as format_duration

_JOB = ("jobid", "jobid_raw", "username", "account", "partition", "qos", "jobname", "state",
        "exit_code", "submit_time", "start_time", "end_time", "elapsed_s", "timelimit_s",
        "nnodes", "ncpus", "req_mem_bytes", "ngpus", "nodelist", "req_cpus", "req_tres",
        "submit_line")  # fmt: skip


def load_report(conn: psycopg.Connection, jobid: str, cluster: str | None = None,
                with_script: bool = False) -> dict | None:
    """Everything the report shows, as plain JSON-able data; None if no such job
    (in ``cluster``, default the configured one). ``with_script``: also the job
    script (``presentation.script_entry``), for a reader the database already lets
    read every table (the local ``hpcperf job``); the data API adds it under the
    page's access rule instead, and the alert digests go without."""
    cols = ", ".join(_JOB)
    c = cluster_name(cluster)
    row = conn.execute(f"SELECT {cols} FROM job_data WHERE cluster = %s AND "
                       "(jobid = %s OR jobid_raw = %s) ORDER BY jobid = %s DESC LIMIT 1",
                       (c, jobid, jobid, jobid)).fetchone()
    if row is None:
        return None
    job = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(_JOB, row,
                                                                                 strict=True)}
    jid = job["jobid"]
    metrics = {
        m: {"value": v, "unit": u, "reason": r, "source": s,
            "label": METRICS[m].label if m in METRICS else m}
        for m, v, u, r, s in conn.execute(
            "SELECT metric, value, unit, reason, source FROM job_metrics WHERE cluster = %s"
            " AND jobid = %s ORDER BY metric", (c, jid))
    }
    hosts = [
        {"host": h, "fraction": f, "expected": e, "present": p, "extra": x, "gaps": g}
        for h, f, e, p, x, g in conn.execute(
            "SELECT host, fraction, expected, present, extra, gaps FROM job_coverage "
            "WHERE cluster = %s AND jobid = %s ORDER BY host", (c, jid))
    ]
    expected = sum(h["expected"] or 0 for h in hosts)
    coverage = {
        "fraction": (sum(h["present"] or 0 for h in hosts) / expected) if expected else None,
        "present": sum(h["present"] or 0 for h in hosts),
        "expected": expected,
        "extra": sum(h["extra"] or 0 for h in hosts),
        "hosts": hosts,
    }
    flags = [
        {"flag": f, "value": v, "threshold": t, "message": m, "advice": a, "rule_version": rv}
        for f, v, t, m, a, rv in conn.execute(
            "SELECT flag, value, threshold, message, advice, rule_version FROM job_flags "
            "WHERE cluster = %s AND jobid = %s ORDER BY flag", (c, jid))
    ]
    flags = order_flags(flags, rule_metrics())
    report = {"job": job, "metrics": metrics, "coverage": coverage, "flags": flags,
              "applications": job_applications(conn, c, jid)}
    report["advice"] = advice(report)
    report["banner"] = state_banner(job["state"], job["exit_code"])
    report["verdict"] = verdict_of(report)
    report["gpu"] = gpu_summary(job, {m: v.get("value") for m, v in metrics.items()})
    if with_script:
        row = conn.execute("SELECT script, size_bytes, truncated, problem FROM job_scripts"
                           " WHERE cluster = %s AND jobid = %s", (c, jid)).fetchone()
        report["script"] = script_entry(None if row is None else dict(zip(
            ("script", "size_bytes", "truncated", "problem"), row, strict=True)), True)
    return report


def job_applications(conn: psycopg.Connection, cluster: str, jobid: str) -> list[dict]:
    """The job's applications, largest share first (``detect.by_application``: one entry
    per application, its executables joined). ``share`` is of the job's CPU time, or of
    its resident memory where ``basis`` is ``memory`` (no CPU time per process)."""
    rows = conn.execute(
        "SELECT application, category, known, executable, processes, share, basis"
        " FROM job_applications WHERE cluster = %s AND jobid = %s", (cluster, jobid)
    ).fetchall()
    if not rows:
        return []
    frame = pl.DataFrame(rows, orient="row", schema={
        "application": pl.Utf8, "category": pl.Utf8, "known": pl.Boolean,
        "executable": pl.Utf8, "processes": pl.Int64, "share": pl.Float64, "basis": pl.Utf8})
    basis = frame["basis"][0]
    return [{**r, "basis": basis} for r in by_application(frame).to_dicts()]


def applications_text(apps: list[dict]) -> list[str]:
    """The report's applications line(s): name, share, category; none recorded said so."""
    if not apps:
        return ["Applications: none recorded (no process data, or not computed yet)"]
    what = "CPU time" if apps[0].get("basis") == "cpu" else "memory"
    cells = []
    for a in apps:
        share = "-" if a["share"] is None else f"{a['share']:.0%}"
        cells.append(f"{a['application']} {share} ({a['category']})")
    return textwrap.wrap(f"Applications (share of {what}): " + ", ".join(cells), 96,
                         subsequent_indent="  ")


def verdict_of(report: dict) -> str:
    """The one sentence (``presentation.verdict``) for a loaded report."""
    values = {m: v.get("value") for m, v in report["metrics"].items()}
    reason = (report["metrics"].get("cpu_efficiency") or {}).get("reason")
    running = report["job"]["end_time"] is None and report["job"]["start_time"] is not None
    return verdict(report["job"], values, running, reason)


def _value(report: dict, metric: str) -> float | None:
    return (report["metrics"].get(metric) or {}).get("value")


_run_s = run_seconds


def advice(report: dict) -> list[dict]:
    """The #SBATCH lines to change (see ``presentation.sbatch_advice``)."""
    values = {m: v.get("value") for m, v in report["metrics"].items()}
    return sbatch_advice(report["job"], values, report["flags"], _run_s(report["job"]))


def render_text(report: dict) -> str:
    """The one-screen text report, then the job script where the report carries one
    (each line behind ``  | ``, so no line of it passes for the report's own)."""
    job, m = report["job"], report["metrics"]
    run = _run_s(job)
    start = (job["start_time"] or "not started")[:16].replace("T", " ")
    end = (job["end_time"] or "running")[:16].replace("T", " ")
    lines = [
        f"Job {job['jobid']} ({job['jobname']})  user {job['username']}  account "
        f"{job['account']}  partition {job['partition']}",
        f"State {job['state']} (exit {job['exit_code']})  nodes {job['nnodes']} "
        f"({job['nodelist']})  cores {job['ncpus']}  GPUs {job['ngpus'] or 0}",
        f"Start {start} UTC  end {end} UTC  ran "
        f"{format_duration(int(run)) if run else '-'} of {format_duration(job['timelimit_s'])}",
        "",
    ]
    if report.get("banner"):
        lines.append(report["banner"][1])
    lines += [*textwrap.wrap(report.get("verdict") or verdict_of(report), 96), ""]

    def row(label: str, fraction: float | None, text: str) -> None:
        shown = bar(fraction) if fraction is not None else " " * (BAR + 2)
        lines.append(f"  {label:<22} {shown} {text}")

    def missing(metric: str) -> str:
        return f"n/a ({(m.get(metric) or {}).get('reason') or 'not computed'})"

    eff = _value(report, "cpu_efficiency")
    src = (m.get("cpu_efficiency") or {}).get("source")
    row("CPU efficiency", eff, missing("cpu_efficiency") if eff is None else
        f"{eff:5.0%}  {eff * (job['ncpus'] or 0):.1f} of {job['ncpus']} cores busy ({src})")
    if src == "node (shared)":
        lines.append(f"  {'':<22} {'':<{BAR + 2}} ({source_note(src)})")
    frac, hwm = _value(report, "mem_hwm_fraction"), _value(report, "mem_hwm_bytes")
    req = (job["req_mem_bytes"] or 0) / max(1, job["nnodes"] or 1)
    row("Memory (peak node)", frac, missing("mem_hwm_bytes") if hwm is None else
        f"{frac or 0:5.0%}  {hwm / GiB:.1f} GiB of node; requested {req / GiB:.1f} GiB/node")
    if run and job["timelimit_s"]:
        used = run / job["timelimit_s"]
        row("Time limit used", used, f"{used:5.0%}  {format_duration(int(run))} of "
            f"{format_duration(job['timelimit_s'])}")
    util = _value(report, "gpu_util")
    gpus = report.get("gpu") or gpu_summary(job, {k: v.get("value") for k, v in m.items()})
    held = gpu_text(gpus, measured=False)  # the memory is among the other metrics below
    row("GPU utilisation", util, (f"n/a ({gpus['reason']})" if gpus["reason"] else
                                  f"{missing('gpu_util')}  {held}") if util is None else
        f"{util:5.0%}  of {held}")
    cov = report["coverage"]["fraction"]
    hosts = report["coverage"]["hosts"]
    gaps = sum(len(h["gaps"] or []) for h in hosts)
    counts = coverage_text(report["coverage"].get("present", 0),
                           report["coverage"].get("expected", 0),
                           report["coverage"].get("extra", 0))
    row("Data coverage", cov, "no data" if cov is None else
        f"{cov:5.0%}  {counts} samples on {len(hosts)} node(s), {gaps} gap(s)")
    lines.append("")
    shown = ("cpu_cores_avg", "idle_nodes", "cpu_imbalance", "mem_requested_ratio",
             "time_limit_ratio", "net_bw_avg", "ib_bw_avg", "lustre_read_bw_avg",
             "lustre_write_bw_avg", "lustre_md_ops_avg", "block_bw_avg", "flops_avg",
             "mem_bw_avg", "gpu_mem_hwm_bytes", "power_avg_w", "energy_j")
    cells = [f"{METRICS[k].label}: {metric_text(k, m[k]['value'], m[k]['unit'])}"
             for k in sorted(shown, key=metric_rank) if k in m and m[k]["value"] is not None]
    lines += [f"  {c}" for c in cells]
    lines.append("")
    lines += [*applications_text(report.get("applications") or []), ""]
    if report["flags"]:
        lines.append(FLAGS_HEADING)
        lines += [f"  ! {f['message']}" for f in report["flags"]]
    else:
        lines.append(NO_FLAGS)
    if report["advice"]:
        lines += ["", SBATCH_HEADING]
        lines += [f"  {line}" for line in sbatch_text(report["advice"])]
    if report.get("script"):
        lines += ["", *script_lines(report["script"])]
    return printable("\n".join(lines), keep="\n") + "\n"


def script_lines(entry: dict) -> list[str]:
    """The job script's section: its note (why none is shown, or that it is cut) and
    its lines, each behind ``  | ``; tabs become spaces (the terminal's own tab stops
    would shift the text)."""
    lines = [entry["note"]] if entry.get("note") else []
    if entry.get("status") == "shown":
        lines.append("Job script:")
        lines += [f"  | {line.expandtabs(8)}" for line in entry["script"].split("\n")]
        if lines[-1] == "  | ":
            lines.pop()  # the script's own last newline
    return lines


def remote_report(base_url: str, jobid: str, token: str | None = None) -> dict | None:
    """The same report from a server's data API (``/api/v1/jobs/<id>``); None if not found
    (or not the token holder's). Other refusals stop with the server's reason."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from hpcperfstats.config import env

    token = token or env("API_TOKEN")
    url = f"{base_url.rstrip('/')}/api/v1/jobs/{urllib.parse.quote(jobid, safe='')}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise SystemExit(f"hpcperf job: {url}: {exc.code} {exc.read()[:200]!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf job", description=__doc__.split("\n")[0])
    parser.add_argument("jobid")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--database-url", default=None, help="default: HPCPERF_DATABASE_URL")
    parser.add_argument("--url", default=None,
                        help="read a remote server's data API instead (token: HPCPERF_API_TOKEN)")
    args = parser.parse_args(argv)
    if args.url:
        report = remote_report(args.url, args.jobid)
    else:
        from hpcperfstats.db.connect import connect

        with connect(args.database_url) as conn:  # database credentials: staff's view
            report = load_report(conn, args.jobid, with_script=True)
    if report is None:
        print(f"hpcperf job: no job {args.jobid!r} in the accounting data", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n" if args.json
                     else render_text(report))
    return 0
