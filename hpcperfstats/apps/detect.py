"""Per-job applications and their shares, as plain functions over frames.

Input: the ``proc`` rows (process name, memory) and ``procexe`` rows
(executable path, CPU time) of a job's samples. Each process (host, pid)
is named by the first application rule that fits its executable or its
name. A job's share of an application is its share of the CPU time of the
job's processes (the largest cumulative ``utime + stime`` seen of each
process: a job's processes start inside the job); where no process has CPU
time (archives of monitors without ``procexe``, such as TACC's) it is the
share of resident memory summed over the samples (memory x time). Node
daemons (category ``system``) are not the job's and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from hpcperf_monitor.rawformat import Sample, parse_procexe_device

from hpcperfstats.apps.rules import SYSTEM, UNKNOWN, AppRule, classify
from hpcperfstats.jobs.accounting import short_host

#: one row per process per sample
PROCESS_SCHEMA = {
    "host": pl.Utf8, "time": pl.Float64, "pid": pl.Int64, "command": pl.Utf8,
    "exe": pl.Utf8, "cpu_cs": pl.Float64, "rss_kb": pl.Float64,
}
#: per job and (application, executable): what job_applications stores, less cluster/day
APP_SCHEMA = {
    "jobid": pl.Utf8, "application": pl.Utf8, "category": pl.Utf8, "known": pl.Boolean,
    "executable": pl.Utf8, "processes": pl.Int64, "cpu_s": pl.Float64, "mem_kb": pl.Float64,
    "share": pl.Float64, "basis": pl.Utf8,
}


def _index(sample: Sample, type_: str, name: str) -> int | None:
    names = [e.name for e in sample.events(type_)]
    return names.index(name) if name in names else None


def exe_text(path: bytes) -> str:
    """A path's bytes as text for the database: UTF-8, other bytes as ``\\xNN``."""
    return path.decode("utf-8", errors="backslashreplace")


def sample_processes(samples: Iterable[Sample]) -> pl.DataFrame:
    """PROCESS_SCHEMA rows of ``proc`` and ``procexe`` lines, joined on (host, time, pid).

    A ``proc`` device is ``<name>/<pid>/<cpus>/<mems>``, a ``procexe`` device
    ``<pid>/<percent-encoded path>``; a device of either that does not parse is
    skipped (the line itself was valid raw format, so nothing is quarantined).
    """
    rows: dict[tuple[str, float, int], dict] = {}
    for sample in samples:
        host = short_host(sample.host)
        procs, exes = sample.rows.get("proc"), sample.rows.get("procexe")
        if procs:
            rss = _index(sample, "proc", "VmRSS")
            for device, values in procs.items():
                parts = device.rsplit("/", 3)
                if len(parts) != 4 or not parts[1].isdigit():
                    continue
                row = rows.setdefault((host, sample.time, int(parts[1])), {})
                row["command"] = parts[0]
                row["rss_kb"] = float(values[rss]) if rss is not None else None
        if exes:
            user, system = _index(sample, "procexe", "utime"), _index(sample, "procexe", "stime")
            for device, values in exes.items():
                try:
                    pid, path = parse_procexe_device(device)
                except ValueError:
                    continue
                row = rows.setdefault((host, sample.time, pid), {})
                row["exe"] = exe_text(path)
                if user is not None and system is not None:
                    row["cpu_cs"] = float(values[user] + values[system])
    return pl.DataFrame(
        [{"host": h, "time": t, "pid": p, "command": r.get("command"), "exe": r.get("exe"),
          "cpu_cs": r.get("cpu_cs"), "rss_kb": r.get("rss_kb")} for (h, t, p), r in rows.items()],
        schema=PROCESS_SCHEMA, orient="row",
    )


def per_process(procs: pl.DataFrame) -> pl.DataFrame:
    """One row per (host, pid): the last name and path seen, the largest CPU time,
    RSS summed over the samples."""
    return procs.sort("time").group_by("host", "pid", maintain_order=True).agg(
        pl.col("command").drop_nulls().last(),
        pl.col("exe").drop_nulls().last(),
        (pl.col("cpu_cs").max() / 100).alias("cpu_s"),
        pl.col("rss_kb").sum().alias("rss_kb_samples"),
    )


def job_applications(jobid: str, procs: pl.DataFrame, rules: list[AppRule]) -> pl.DataFrame:
    """APP_SCHEMA rows of one job from its processes (PROCESS_SCHEMA, already the job's).

    ``executable`` is the path when ``procexe`` gave one, else the process
    name; ``mem_kb`` the mean resident memory over the job's sample instants.
    """
    if procs.is_empty():
        return pl.DataFrame(schema=APP_SCHEMA)
    instants = procs.select("host", "time").unique().height
    each = per_process(procs)
    named = {}
    for exe, command in each.select("exe", "command").unique().iter_rows():
        named[(exe, command)] = classify(rules, exe, command)
    apps = [named[(e, c)] for e, c in each.select("exe", "command").iter_rows()]
    each = each.with_columns(
        pl.Series("application", [a.name if a else UNKNOWN for a in apps], pl.Utf8),
        pl.Series("category", [a.category if a else UNKNOWN for a in apps], pl.Utf8),
        pl.Series("known", [a is not None for a in apps], pl.Boolean),
        pl.coalesce("exe", "command").fill_null("?").alias("executable"),
    ).filter(pl.col("category") != SYSTEM)
    if each.is_empty():
        return pl.DataFrame(schema=APP_SCHEMA)
    grouped = each.group_by("application", "category", "known", "executable").agg(
        pl.len().cast(pl.Int64).alias("processes"),
        pl.col("cpu_s").sum().alias("cpu_s"),
        (pl.col("rss_kb_samples").sum() / instants).alias("mem_kb"),
        pl.col("cpu_s").is_not_null().any().alias("has_cpu"),
    )
    cpu_total = each["cpu_s"].sum() or 0.0
    basis = "cpu" if cpu_total > 0 else "memory"
    weight = "cpu_s" if basis == "cpu" else "mem_kb"
    total = grouped[weight].fill_null(0).sum() or 0.0
    out = grouped.with_columns(
        pl.when(pl.col("has_cpu")).then(pl.col("cpu_s")).otherwise(None).alias("cpu_s"),
        (pl.col(weight).fill_null(0) / total if total > 0 else pl.lit(None, pl.Float64))
        .alias("share"),
        pl.lit(basis).alias("basis"),
        pl.lit(jobid).alias("jobid"),
    )
    return out.select(list(APP_SCHEMA)).cast(APP_SCHEMA).sort(
        ["share", "application", "executable"], descending=[True, False, False],
        nulls_last=True)


def by_application(rows: pl.DataFrame) -> pl.DataFrame:
    """A job's rows summed per application (the job page's list): name, category, share."""
    return rows.group_by("application", "category", "known").agg(
        pl.col("share").sum(), pl.col("processes").sum(),
        pl.col("executable").sort().str.join(", ").alias("executables"),
    ).sort(["share", "application"], descending=[True, False], nulls_last=True)
