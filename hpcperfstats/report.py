"""``hpcperf job <jobid>``: one terminal screen telling a researcher how their job ran.

In the spirit of Princeton's ``jobstats``: the job's facts, each measured
number next to what was allocated (with a bar), the data coverage, the flags
in plain words, and the ``#SBATCH`` lines to change with the numbers. It
reads the tables the pipeline wrote (job_data, job_metrics, job_coverage,
job_flags): the same database the dashboards read. ``--json`` gives the same
content to scripts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime

import psycopg

from hpcperfstats.accounting import format_duration
from hpcperfstats.metrics import METRICS

BAR = 20
GiB = 2**30
#: Head-room the advice adds on top of what the job used.
MEM_HEADROOM = 1.25
TIME_HEADROOM = 1.5
CORE_HEADROOM = 1.2

_JOB = ("jobid", "jobid_raw", "username", "account", "partition", "qos", "jobname", "state",
        "exit_code", "submit_time", "start_time", "end_time", "elapsed_s", "timelimit_s",
        "nnodes", "ncpus", "req_mem_bytes", "ngpus", "nodelist")  # fmt: skip


def load_report(conn: psycopg.Connection, jobid: str) -> dict | None:
    """Everything the report shows, as plain JSON-able data; None if no such job."""
    cols = ", ".join(_JOB)
    row = conn.execute(f"SELECT {cols} FROM job_data WHERE jobid = %s OR jobid_raw = %s "
                       "ORDER BY jobid = %s DESC LIMIT 1", (jobid, jobid, jobid)).fetchone()
    if row is None:
        return None
    job = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(_JOB, row,
                                                                                 strict=True)}
    jid = job["jobid"]
    metrics = {
        m: {"value": v, "unit": u, "reason": r, "source": s,
            "label": METRICS[m].label if m in METRICS else m}
        for m, v, u, r, s in conn.execute(
            "SELECT metric, value, unit, reason, source FROM job_metrics WHERE jobid = %s "
            "ORDER BY metric", (jid,))
    }
    hosts = [
        {"host": h, "fraction": f, "expected": e, "present": p, "gaps": g}
        for h, f, e, p, g in conn.execute(
            "SELECT host, fraction, expected, present, gaps FROM job_coverage "
            "WHERE jobid = %s ORDER BY host", (jid,))
    ]
    expected = sum(h["expected"] or 0 for h in hosts)
    coverage = {
        "fraction": (sum(h["present"] or 0 for h in hosts) / expected) if expected else None,
        "hosts": hosts,
    }
    flags = [
        {"flag": f, "value": v, "threshold": t, "message": m, "advice": a, "rule_version": rv}
        for f, v, t, m, a, rv in conn.execute(
            "SELECT flag, value, threshold, message, advice, rule_version FROM job_flags "
            "WHERE jobid = %s ORDER BY flag", (jid,))
    ]
    report = {"job": job, "metrics": metrics, "coverage": coverage, "flags": flags}
    report["advice"] = advice(report)
    return report


def _value(report: dict, metric: str) -> float | None:
    return (report["metrics"].get(metric) or {}).get("value")


def _run_s(job: dict) -> float | None:
    if job["start_time"] and job["end_time"]:
        start, end = (datetime.fromisoformat(job[k]) for k in ("start_time", "end_time"))
        return (end - start).total_seconds()
    return job["elapsed_s"]


def advice(report: dict) -> list[dict]:
    """The #SBATCH lines to change, one per advice kind of the flags that fired."""
    job, kinds = report["job"], {f["advice"] for f in report["flags"] if f["advice"]}
    out = []
    nnodes, ncpus, ngpus = job["nnodes"] or 1, job["ncpus"] or 0, job["ngpus"] or 0
    idle = _value(report, "idle_nodes")
    if "nodes" in kinds and idle:
        want = max(1, nnodes - int(idle))
        out.append({"kind": "nodes", "line": f"#SBATCH --nodes={want}",
                    "why": f"was {nnodes}: {int(idle)} node(s) did no work"})
    eff = _value(report, "cpu_efficiency")
    if "cores" in kinds and eff is not None and ncpus:
        busy = eff * ncpus
        want = max(1, math.ceil(busy * CORE_HEADROOM))
        out.append({"kind": "cores", "line": f"#SBATCH --ntasks={want}",
                    "why": f"was {ncpus} cores; {busy:.1f} busy on average"})
    hwm = _value(report, "mem_hwm_bytes")
    frac = _value(report, "mem_hwm_fraction")
    if "memory" in kinds and hwm is not None:
        want = max(1, math.ceil(hwm * MEM_HEADROOM / GiB))
        was = (job["req_mem_bytes"] or 0) / nnodes / GiB
        node = hwm / frac / GiB if frac else math.inf
        if want > node:  # more than a node holds: all of it, or spread the data
            out.append({"kind": "memory", "line": "#SBATCH --mem=0",
                        "why": f"all of the node ({node:.0f}G); peak use {hwm / GiB:.1f}G "
                               "leaves no head-room: or more nodes / a large-memory partition"})
        else:
            out.append({"kind": "memory", "line": f"#SBATCH --mem={want}G",
                        "why": f"per node; was {was:.0f}G, peak use {hwm / GiB:.1f}G"})
    run = _run_s(job)
    if "time" in kinds and run:
        quarter = 900
        want = max(quarter, math.ceil(run * TIME_HEADROOM / quarter) * quarter)
        out.append({"kind": "time", "line": f"#SBATCH --time={format_duration(want)}",
                    "why": f"was {format_duration(job['timelimit_s'])}; "
                           f"ran {format_duration(int(run))}"})
    util = _value(report, "gpu_util")
    if "gpus" in kinds and util is not None and ngpus:
        want = math.ceil(ngpus * util * 2) if util > 0 else 0
        out.append({"kind": "gpus", "line": f"#SBATCH --gpus={want}",
                    "why": f"was {ngpus}; used {util:.0%} on average"
                           + ("" if want else ": use a CPU partition")})
    return out


def _bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR)
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def _human(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / GiB:.1f} GiB"
    if unit in ("B/s", "1/s", "Hz"):
        for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
            if abs(value) >= scale or scale == 1:
                base = {"B/s": "B/s", "1/s": "/s", "Hz": "Hz"}[unit]
                return f"{value / scale:.1f} {prefix}{base}"
    if unit == "nodes":
        return f"{value:.0f}"
    if unit == "1":
        return f"{value:.2f}"
    if unit == "W":
        return f"{value:.0f} W"
    if unit == "J":
        return f"{value / 3.6e6:.2f} kWh"
    return f"{value:.1f} {unit}"


def render_text(report: dict) -> str:
    """The one-screen text report."""
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

    def row(label: str, fraction: float | None, text: str) -> None:
        bar = _bar(fraction) if fraction is not None else " " * (BAR + 2)
        lines.append(f"  {label:<22} {bar} {text}")

    def missing(metric: str) -> str:
        return f"n/a ({(m.get(metric) or {}).get('reason') or 'not computed'})"

    eff = _value(report, "cpu_efficiency")
    src = (m.get("cpu_efficiency") or {}).get("source")
    row("CPU efficiency", eff, missing("cpu_efficiency") if eff is None else
        f"{eff:5.0%}  {eff * (job['ncpus'] or 0):.1f} of {job['ncpus']} cores busy ({src})")
    frac, hwm = _value(report, "mem_hwm_fraction"), _value(report, "mem_hwm_bytes")
    req = (job["req_mem_bytes"] or 0) / max(1, job["nnodes"] or 1)
    row("Memory (peak node)", frac, missing("mem_hwm_bytes") if hwm is None else
        f"{frac or 0:5.0%}  {hwm / GiB:.1f} GiB of node; requested {req / GiB:.1f} GiB/node")
    if run and job["timelimit_s"]:
        used = run / job["timelimit_s"]
        row("Time limit used", used, f"{used:5.0%}  {format_duration(int(run))} of "
            f"{format_duration(job['timelimit_s'])}")
    util = _value(report, "gpu_util")
    row("GPU utilisation", util, missing("gpu_util") if util is None else f"{util:5.0%}")
    cov = report["coverage"]["fraction"]
    hosts = report["coverage"]["hosts"]
    gaps = sum(len(h["gaps"] or []) for h in hosts)
    row("Data coverage", cov, "no data" if cov is None else
        f"{cov:5.0%}  of samples on {len(hosts)} node(s), {gaps} gap(s)")
    lines.append("")
    shown = ("cpu_cores_avg", "idle_nodes", "cpu_imbalance", "net_bw_avg", "ib_bw_avg",
             "lustre_read_bw_avg", "lustre_write_bw_avg", "lustre_md_ops_avg", "block_bw_avg",
             "flops_avg", "mem_bw_avg", "gpu_mem_hwm_bytes", "power_avg_w", "energy_j")
    cells = [f"{METRICS[k].label}: {_human(m[k]['value'], m[k]['unit'])}"
             for k in shown if k in m and m[k]["value"] is not None]
    lines += [f"  {c}" for c in cells]
    lines.append("")
    if report["flags"]:
        lines.append("What to look at:")
        lines += [f"  ! {f['message']}" for f in report["flags"]]
    else:
        lines.append("No problems found.")
    if report["advice"]:
        lines += ["", "Next time, change these lines in your job script:"]
        lines += [f"  {a['line']:<28} # {a['why']}" for a in report["advice"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf job", description=__doc__.split("\n")[0])
    parser.add_argument("jobid")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--database-url", default=None, help="default: HPCPERF_DATABASE_URL")
    args = parser.parse_args(argv)
    from hpcperfstats.db.connect import connect

    with connect(args.database_url) as conn:
        report = load_report(conn, args.jobid)
    if report is None:
        print(f"hpcperf job: no job {args.jobid!r} in the accounting data", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n" if args.json
                     else render_text(report))
    return 0
