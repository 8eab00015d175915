"""``hpcperf-sacct-dump``: the login node's daily accounting dump.

Runs ``sacct`` for one UTC day (default: yesterday) with every field of
:data:`hpcperfstats.jobs.accounting.FIELDS`, pipe-separated with a header, and
writes ``<dir>/<YYYY-MM-DD>.txt``. The file is written beside its final name,
fsynced and renamed over it, so a re-run for the same day replaces the dump
atomically and the pipeline never reads half a file. A failing ``sacct``
leaves the previous dump in place.

Jobs listed are those that were running or ended during the day (sacct's
``--starttime``/``--endtime`` semantics), so a job still running at dump time
appears again, finished, in a later day's file; the loader keeps the newest.
Cron example (01:15 UTC): ``15 1 * * * hpcperf-sacct-dump --dir /scratch/hpcperf/accounting``.
``--day today`` dumps the jobs of the current UTC day so far (a trial, or
an hourly cron for fresher pages); the nightly run of the next day replaces
it with the complete file.

``--scripts`` (where Slurm stores job scripts, ``AccountingStoreFlags=job_script``)
also asks ``sacct -j <id> --batch-script`` for each finished job of the dump, one
job per call, and writes ``<YYYY-MM-DD>.scripts.jsonl`` (:mod:`hpcperfstats.jobs.scripts`)
before the dump, so the pipeline finds a dump's scripts when it finds the dump.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from hpcperf_monitor.state import atomic_write

from hpcperfstats.jobs.accounting import FIELDS, SLURM_TIME_FORMAT, parse_accounting
from hpcperfstats.jobs.scripts import format_scripts, parse_batch_script, scripts_path

#: How long sacct may take before the dump gives up (slurmdbd down, huge day).
SACCT_TIMEOUT_S = 600


def sacct_command(day: date, sacct: str = "sacct") -> list[str]:
    """The sacct invocation for one UTC day."""
    nxt = day + timedelta(days=1)
    return [
        sacct, "--allusers", "--allocations", "--parsable2",
        f"--format={','.join(FIELDS)}",
        f"--starttime={day.isoformat()}T00:00:00", f"--endtime={nxt.isoformat()}T00:00:00",
    ]


def run_sacct(day: date, sacct: str = "sacct", timeout: float = SACCT_TIMEOUT_S) -> str:
    """sacct's output for ``day``, times in UTC (``TZ=UTC``: Slurm 22.05 ignores
    the ``%z`` of SLURM_TIME_FORMAT and prints no offset; newer ones print it)."""
    env = {**os.environ, "TZ": "UTC", "SLURM_TIME_FORMAT": SLURM_TIME_FORMAT}
    out = subprocess.run(sacct_command(day, sacct), capture_output=True, text=True,
                         env=env, timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"sacct exited {out.returncode}: {out.stderr.strip()[:500]}")
    return out.stdout


def batch_script_command(jobid: str, sacct: str = "sacct") -> list[str]:
    """sacct asked for one job's script: one job per call, so no line of a script can
    pass for the next job's header."""
    return [sacct, "--batch-script", f"--jobs={jobid}"]


def collect_scripts(jobs: pl.DataFrame, sacct: str = "sacct",
                    timeout: float = SACCT_TIMEOUT_S) -> tuple[dict[str, bytes], list[str]]:
    """The scripts of the dump's finished jobs (jobid -> bytes as submitted), and what
    went wrong per job (sacct failing, an answer not in sacct's layout, another job's
    id): a job without a script (not a batch job) is simply absent."""
    scripts: dict[str, bytes] = {}
    problems: list[str] = []
    finished = jobs.filter(pl.col("end_time").is_not_null())["jobid"].to_list()
    for jobid in finished:
        try:
            out = subprocess.run(batch_script_command(jobid, sacct), capture_output=True,
                                 timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            problems.append(f"job {jobid}: sacct --batch-script took over {timeout:g} s")
            continue
        if out.returncode != 0:
            err = out.stderr.decode("utf-8", "replace").strip()[:200]
            problems.append(f"job {jobid}: sacct exited {out.returncode}: {err}")
            continue
        if not out.stdout.strip():
            problems.append(f"job {jobid}: sacct printed nothing (not in slurmdbd?)")
            continue
        try:
            got = parse_batch_script(out.stdout)
        except ValueError as exc:
            problems.append(f"job {jobid}: {exc}")
            continue
        if got.jobid != jobid:
            problems.append(f"job {jobid}: sacct answered with job {got.jobid!r}")
        elif got.script is not None:
            scripts[jobid] = got.script
    return scripts, problems


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (re-running a day never tears a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode())


def dump_day(day: date, folder: Path, sacct: str = "sacct", scripts: bool = False,
             ) -> tuple[Path, int, int]:
    """Write the day's dump (and with ``scripts`` its scripts file first); returns
    (path, jobs, malformed lines). Jobs whose script could not be had are named on
    stderr; the dump is written all the same."""
    text = run_sacct(day, sacct)
    jobs, issues = parse_accounting(text, source=f"sacct {day}")
    rejected = [i for i in issues if i.action == "file rejected"]
    if rejected:  # no usable header: not a dump at all
        raise RuntimeError(f"sacct output has no usable header: {rejected[0].reason}")
    path = folder / f"{day.isoformat()}.txt"
    if scripts:
        found, problems = collect_scripts(jobs, sacct)
        for problem in problems:
            print(f"hpcperf-sacct-dump: {day}: {problem}", file=sys.stderr)
        write_atomically(scripts_path(path), format_scripts(found))
    write_atomically(path, text)
    return path, jobs.height, len(issues)


def day_arg(text: str) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (UTC) for ``--day``."""
    today = datetime.now(UTC).date()
    named = {"today": today, "yesterday": today - timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {text!r} (YYYY-MM-DD, today, "
                                         "yesterday)") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf-sacct-dump", description=__doc__.split("\n")[0])
    parser.add_argument("--day", type=day_arg,
                        help="UTC day YYYY-MM-DD, 'today' (jobs so far; re-dump it "
                        "tomorrow) or 'yesterday' (the default)")
    parser.add_argument("--days", type=int, default=1, help="this many days from --day")
    parser.add_argument("--dir", type=Path, default=None,
                        help="output folder (default: HPCPERF_ACCOUNTING_DIR)")
    parser.add_argument("--sacct", default="sacct", help="sacct executable")
    parser.add_argument("--scripts", action="store_true",
                        help="also store each finished job's script (sacct --batch-script; "
                        "needs AccountingStoreFlags=job_script in slurm.conf)")
    args = parser.parse_args(argv)
    if args.dir is None:
        from hpcperfstats.config import settings

        args.dir = settings().accounting_dir
    first = args.day or (datetime.now(UTC).date() - timedelta(days=1))
    status = 0
    for i in range(args.days):
        day = first + timedelta(days=i)
        try:
            path, jobs, bad = dump_day(day, args.dir, args.sacct, args.scripts)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"hpcperf-sacct-dump: {day}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {jobs} jobs" + (f", {bad} malformed lines" if bad else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
