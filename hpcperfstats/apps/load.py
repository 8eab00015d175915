"""Build ``job_applications`` for the jobs that ended in a window, day by day.

Process rows are not in ``host_data`` (``proc`` and ``procexe`` are skipped
there: one row per process per event would dwarf it), so each day reads them
from the raw archive: the directories of the day's jobs' hosts only, from
the earliest start of those jobs, and of each chunk only the lines the
detection uses (headers, record and mark lines, ``proc`` and ``procexe``
rows) go through the reference reader. Bad lines are not reported here:
``host_data`` reads the same text and quarantines them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import psycopg
from hpcperf_monitor.rawformat import read_raw, split_lines

from hpcperfstats.apps.detect import APP_SCHEMA, job_applications, sample_processes
from hpcperfstats.apps.rules import AppRule
from hpcperfstats.archive.store import read_chunks
from hpcperfstats.db.load import copy_frame
from hpcperfstats.db.tables import JOB_APPLICATIONS
from hpcperfstats.jobs.accounting import short_host
from hpcperfstats.jobs.load import jobs_ended
from hpcperfstats.jobs.metrics import END_GRACE_S
from hpcperfstats.jobs.store import day_windows

_TYPES = ("proc ", "procexe ")
_KEEP_FIRST = frozenset("$!@%#0123456789")


@dataclass
class AppDayResult:
    jobs: int = 0
    rows: int = 0
    unknown: int = 0  # rows of executables no rule names
    basis: dict[str, int] = field(default_factory=dict)  # jobs per basis (cpu / memory)


def process_lines(text: str) -> str:
    """Only the lines application detection reads (see the module docstring)."""
    return "\n".join(
        ln for ln in split_lines(text)
        if ln[:1] in _KEEP_FIRST or ln.startswith(_TYPES)
    ) + "\n"


def read_processes(archive_dir, hosts: set[str], start: float, end: float) -> pl.DataFrame:
    """PROCESS_SCHEMA rows of ``hosts`` (short names) with start <= time < end."""
    frames = []
    for chunk in read_chunks(archive_dir, start, end, 0.0,
                             hosts=lambda name: short_host(name) in hosts):
        raw = read_raw(process_lines(chunk.text), source=chunk.source, header=chunk.header)
        frames.append(sample_processes(s for s in raw.samples if start <= s.time < end))
    if not frames:
        return sample_processes(())
    return pl.concat(frames).filter(pl.col("host").is_in(sorted(hosts)))


def day_applications(jobs: pl.DataFrame, procs: pl.DataFrame,
                     rules: list[AppRule]) -> pl.DataFrame:
    """APP_SCHEMA rows of every job in ``jobs`` (jobid, hosts, start_time, end_time)."""
    out = []
    for job in jobs.iter_rows(named=True):
        if job["start_time"] is None or not job["hosts"]:
            continue
        t0 = job["start_time"].timestamp()
        t1 = job["end_time"].timestamp() + END_GRACE_S
        mine = procs.filter(pl.col("host").is_in([short_host(h) for h in job["hosts"]])
                            & (pl.col("time") >= t0) & (pl.col("time") <= t1))
        out.append(job_applications(job["jobid"], mine, rules))
    return pl.concat(out) if out else pl.DataFrame(schema=APP_SCHEMA)


def build_job_applications(conn: psycopg.Connection, archive_dir, start: datetime,
                           end: datetime, rules: list[AppRule], version: str,
                           cluster: str) -> AppDayResult:
    """Replace the ``job_applications`` rows of ``cluster``'s jobs that ended in [start, end)."""
    result = AppDayResult()
    for day, nxt in day_windows(start, end):
        jobs = jobs_ended(conn, day, nxt)
        started = [t for t in jobs["start_time"].to_list() if t is not None]
        hosts = {short_host(h) for hs in jobs["hosts"].to_list() if hs for h in hs}
        procs = (read_processes(archive_dir, hosts, min(started).timestamp(),
                                nxt.timestamp() + END_GRACE_S)
                 if started and hosts else sample_processes(()))
        rows = day_applications(jobs, procs, rules).with_columns(
            pl.lit(cluster).alias("cluster"), pl.lit(version).alias("rule_version"),
            pl.lit(day.date()).alias("day"))
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("DELETE FROM job_applications WHERE cluster = %s"
                        " AND (day = %s OR jobid = ANY(%s))",
                        (cluster, day.date(), jobs["jobid"].to_list()))
            copy_frame(cur, "job_applications", rows, JOB_APPLICATIONS.copy_columns)
        result.jobs += rows["jobid"].n_unique()
        result.rows += rows.height
        result.unknown += rows.filter(~pl.col("known")).height
        for basis, n in rows.unique(["jobid"]).group_by("basis").len().iter_rows():
            result.basis[basis] = result.basis.get(basis, 0) + n
    return result
