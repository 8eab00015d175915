"""Job scripts: ``sacct --batch-script`` output -> a day's scripts file -> ``job_scripts``.

Where the site's Slurm stores job scripts (``AccountingStoreFlags=job_script``),
``hpcperf-sacct-dump --scripts`` asks ``sacct -j <id> --batch-script`` for each
batch job of the day's dump, one job per call: the output is a header line,
a rule of 80 dashes and the script as submitted (Slurm's ``_print_script`` in
``src/sacct/sacct.c``), so with one job per call no line of a script can pose
as the next job's header. A script is many lines of any bytes, so it cannot
live in the pipe-separated dump: it goes to ``<YYYY-MM-DD>.scripts.jsonl``
beside the dump, one JSON object per job (``{"jobid": ..., "script": ...}``,
the bytes as UTF-8 with ``surrogateescape`` so invalid bytes survive the trip
and can be set aside as they came). The file is written before the dump, so
the pipeline sees the scripts of a dump when it sees the dump.

``slurm_jobs`` loads it with the dump (:func:`load_job_scripts`): a script
with NUL bytes or invalid UTF-8 is set aside in the quarantine with its jobid
and reason, and the row says so (the page tells why it is not shown); one
over ``HPCPERF_JOB_SCRIPT_MAX_BYTES`` keeps its first bytes (whole
characters) and is marked truncated with its full size. Everything else of the
day loads whatever one script holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import psycopg

from hpcperfstats.archive import quarantine
from hpcperfstats.config import env
from hpcperfstats.db.load import copy_frame, with_cluster
from hpcperfstats.db.tables import JOB_SCRIPTS

#: what sacct prints before each job's script, then a rule of 80 dashes
HEADER = "Batch Script for "
RULE = "-" * 80
#: what sacct prints for a job whose script it does not have (not a batch job,
#: or stored before AccountingStoreFlags=job_script)
NONE_ANSWER = b"NONE\n"
SUFFIX = ".scripts.jsonl"


@dataclass(frozen=True)
class BatchScript:
    """One job's ``sacct --batch-script`` answer: its id and the script's bytes
    (None: Slurm has none)."""

    jobid: str
    script: bytes | None


def parse_batch_script(out: bytes) -> BatchScript:
    """One job's ``sacct -j ID --batch-script`` output (bytes as printed).

    The layout: ``Batch Script for <id>\\n``, 80 dashes and ``\\n``, the script,
    and one ``\\n`` sacct adds after it; ``NONE\\n`` stands for no script.
    Raises ValueError on anything else (an error text, two jobs in one answer
    cannot be told from a script holding a header, so the caller asks for one).
    """
    head, sep, rest = out.partition(b"\n")
    if not sep or not head.startswith(HEADER.encode()):
        raise ValueError(f"no {HEADER.strip()!r} header: {head[:80]!r}")
    jobid = head[len(HEADER):].strip().decode("ascii", "replace")
    if not jobid or any(c.isspace() for c in jobid):
        raise ValueError(f"bad job id in the header: {jobid!r}")
    rule, sep, body = rest.partition(b"\n")
    if rule != RULE.encode() or not sep:
        raise ValueError(f"no rule of 80 dashes after the header: {rule[:80]!r}")
    if not body.endswith(b"\n"):
        raise ValueError("output cut short: no newline after the script")
    body = body[:-1]  # the newline sacct prints after every script
    return BatchScript(jobid, None if body == NONE_ANSWER else body)


def scripts_path(dump: Path) -> Path:
    """The scripts file beside a day's dump ``<day>.txt``."""
    return dump.with_name(dump.name.removesuffix(".txt") + SUFFIX)


def format_scripts(scripts: Mapping[str, bytes]) -> str:
    """The scripts file's text: one ``{"jobid", "script"}`` object per line, bytes kept
    (invalid UTF-8 as ``\\udcXX`` escapes, NUL as ``\\u0000``)."""
    return "".join(
        json.dumps({"jobid": jobid, "script": raw.decode("utf-8", "surrogateescape")}) + "\n"
        for jobid, raw in scripts.items())


def read_scripts(text: str) -> tuple[dict[str, bytes], list[tuple[int, str]]]:
    """A scripts file's jobs and their bytes, and the lines that are not a record
    (line number, why): one bad line loses only itself."""
    out: dict[str, bytes] = {}
    problems: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            jobid, script = rec["jobid"], rec["script"]
            if not isinstance(jobid, str) or not jobid or not isinstance(script, str):
                raise TypeError("jobid and script must be text")
            out[jobid] = script.encode("utf-8", "surrogateescape")
        except (ValueError, KeyError, TypeError, UnicodeEncodeError) as exc:
            problems.append((n, f"not a job script record ({exc})"))
    return out, problems


@dataclass(frozen=True)
class CheckedScript:
    """A script ready for ``job_scripts``: its text (None when set aside), size in
    bytes as submitted, whether only its first bytes are kept, why it was set aside."""

    jobid: str
    script: str | None
    size_bytes: int
    truncated: bool
    problem: str | None


def check_script(jobid: str, raw: bytes, max_bytes: int) -> CheckedScript:
    """What of one script is stored: the text when it is clean UTF-8 without NUL
    (PostgreSQL text holds neither), cut to ``max_bytes`` at a character boundary."""
    if b"\x00" in raw:
        return CheckedScript(jobid, None, len(raw), False,
                             f"contains NUL bytes (first at byte {raw.index(0)})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return CheckedScript(jobid, None, len(raw), False,
                             f"not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})")
    if len(raw) <= max_bytes:
        return CheckedScript(jobid, text, len(raw), False, None)
    # "ignore" drops only the character the cut went through
    return CheckedScript(jobid, raw[:max_bytes].decode("utf-8", "ignore"), len(raw), True, None)


def script_max_bytes() -> int:
    """``HPCPERF_JOB_SCRIPT_MAX_BYTES``: the longest script stored whole."""
    return int(env("JOB_SCRIPT_MAX_BYTES"))


def scripts_frame(checked: Iterable[CheckedScript], day: date, cluster: str) -> pl.DataFrame:
    """``job_scripts`` rows of ``cluster``."""
    schema = {k: v for k, v in JOB_SCRIPTS.schema.items() if k != "cluster"}
    rows = [(c.jobid, c.script, c.size_bytes, c.truncated, c.problem, day) for c in checked]
    return with_cluster(pl.DataFrame(rows, schema=schema, orient="row"), cluster)


def load_job_scripts(conn: psycopg.Connection, path: Path, day: date, cluster: str,
                     quarantine_dir: Path, max_bytes: int | None = None) -> dict[str, int]:
    """Load a day's scripts file into ``job_scripts`` (one transaction; a job's newer
    script replaces its row). Scripts with NUL bytes or invalid UTF-8, and lines that
    are not records, go to the quarantine with the reason. Returns counts: stored,
    truncated, set_aside, bad_lines."""
    counts = {"stored": 0, "truncated": 0, "set_aside": 0, "bad_lines": 0}
    if not path.exists():
        return counts
    raw_text = path.read_bytes().decode("utf-8", "surrogateescape")
    scripts, problems = read_scripts(raw_text)
    lines = raw_text.splitlines()
    for n, why in problems:
        quarantine.put(quarantine_dir, lines[n - 1].encode("utf-8", "surrogateescape"),
                       f"job scripts file: {why[:300]}", f"{path}:{n}")
    counts["bad_lines"] = len(problems)
    limit = script_max_bytes() if max_bytes is None else max_bytes
    checked = [check_script(jobid, raw, limit) for jobid, raw in scripts.items()]
    for c in checked:
        if c.problem:
            quarantine.put(quarantine_dir, scripts[c.jobid],
                           f"job script of job {c.jobid}: {c.problem}", f"{path}:{c.jobid}")
    counts["set_aside"] = sum(c.problem is not None for c in checked)
    counts["truncated"] = sum(c.truncated for c in checked)
    counts["stored"] = len(checked) - counts["set_aside"]
    frame = scripts_frame(checked, day, cluster)
    with conn.transaction(), conn.cursor() as cur:
        # a job seen in several days' files keeps the newest day's script
        cur.execute("DELETE FROM job_scripts WHERE cluster = %s AND jobid = ANY(%s)"
                    " AND source_day <= %s", (cluster, frame["jobid"].to_list(), day))
        cur.execute("CREATE TEMP TABLE job_scripts_in (LIKE job_scripts INCLUDING DEFAULTS)"
                    " ON COMMIT DROP")
        copy_frame(cur, "job_scripts_in", frame, JOB_SCRIPTS.copy_columns)
        cols = ", ".join(JOB_SCRIPTS.copy_columns)
        cur.execute(f"INSERT INTO job_scripts ({cols}) SELECT {cols} FROM job_scripts_in"
                    " ON CONFLICT (cluster, jobid) DO NOTHING")
    return counts
