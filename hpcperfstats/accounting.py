"""Slurm accounting dumps: the one definition of their format, a parser and a writer.

The login node runs ``sacct -X --parsable2`` once a day into
``accounting/<YYYY-MM-DD>.txt`` with the fields of :data:`FIELDS`. The dump
script, this parser and the demo generator all use that one constant, so the
three cannot drift apart. Real dumps carry quirks (``Unknown`` times,
``UNLIMITED`` limits, FQDN node names, job steps despite ``-X``); the parser
maps each to a null or a normal form and turns any line it cannot read into a
:class:`ParseIssue` instead of failing the whole day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import hostlist
import polars as pl
from hpcperf_monitor.rawformat import ParseIssue

#: sacct field names, in dump order (``sacct --format=<','.join(FIELDS)>``).
FIELDS: tuple[str, ...] = (
    "JobID", "JobIDRaw", "User", "Account", "Partition", "QOS", "JobName", "State",
    "ExitCode", "Submit", "Start", "End", "Elapsed", "Timelimit", "NNodes", "NCPUS",
    "ReqMem", "AllocTRES", "NodeList", "ReqCPUS", "ReqTRES", "SubmitLine",
)  # fmt: skip
#: Fields added later (advice in the form the job was asked for): dumps made
#: before them still parse. SubmitLine stays last: it may itself contain ``|``.
OPTIONAL_FIELDS: tuple[str, ...] = ("ReqCPUS", "ReqTRES", "SubmitLine")

#: ``SLURM_TIME_FORMAT`` the dump runs sacct with.
SLURM_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

#: Parsed frame: column -> polars dtype (matches the ``job_data`` table).
COLUMNS: dict[str, pl.DataType] = {
    "jobid": pl.Utf8(),
    "jobid_raw": pl.Utf8(),
    "username": pl.Utf8(),
    "account": pl.Utf8(),
    "partition": pl.Utf8(),
    "qos": pl.Utf8(),
    "jobname": pl.Utf8(),
    "state": pl.Utf8(),
    "exit_code": pl.Utf8(),
    "submit_time": pl.Datetime("us", "UTC"),
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    "elapsed_s": pl.Int64(),
    "timelimit_s": pl.Int64(),
    "nnodes": pl.Int32(),
    "ncpus": pl.Int32(),
    "req_mem_bytes": pl.Int64(),
    "ngpus": pl.Int32(),
    "nodelist": pl.Utf8(),
    "hosts": pl.List(pl.Utf8()),
    "req_cpus": pl.Int32(),
    "req_tres": pl.Utf8(),
    "submit_line": pl.Utf8(),
}

_NULL_TIMES = {"", "unknown", "none", "n/a"}
_NULL_LIMITS = {"", "unlimited", "partition_limit", "invalid", "none"}
_NO_NODES = {"", "none assigned", "(null)", "none"}
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
# [D-]HH:MM:SS[.fff], MM:SS[.fff], D-HH, D-HH:MM
_DURATION_RE = re.compile(
    r"^(?:(?P<d>\d+)-)?(?:(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?)(?:\.\d+)?$"
)
_MEM_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)$", re.IGNORECASE)
_MEM_UNITS = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_JOBID_RE = re.compile(r"^\d+(?:_(?:\d+|\[[^\]]*\]))?(?:\+\d+)?$")


def short_host(name: str) -> str:
    """The one normal form of a host name: lower case, without its domain.

    sacct prints short names where the monitor may report an FQDN
    (``c571-001.stampede3.tacc.utexas.edu``); every join on hosts goes
    through this function on both sides.
    """
    return name.strip().split(".", 1)[0].lower()


def parse_time(text: str, tz: tzinfo = UTC) -> datetime | None:
    """An sacct time in UTC; ``Unknown``/``None``/empty -> None.

    Times without an offset are in ``tz`` (sacct's local zone). Raises
    ValueError on anything else.
    """
    value = text.strip()
    if value.lower() in _NULL_TIMES:
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).astimezone(UTC)
        except ValueError:
            pass
    for fmt in _NAIVE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            pass
    raise ValueError(f"unparsable time {text!r}")


def parse_duration(text: str) -> int | None:
    """Seconds of an sacct duration (``2-00:00:00``, ``01:30:00``, ``30:00``).

    ``UNLIMITED``, ``Partition_Limit`` and empty -> None; ValueError otherwise.
    """
    value = text.strip()
    if value.lower() in _NULL_LIMITS:
        return None
    m = _DURATION_RE.match(value)
    if not m:
        raise ValueError(f"unparsable duration {text!r}")
    days = int(m["d"] or 0)
    parts = [int(p) for p in (m["a"], m["b"], m["c"]) if p is not None]
    if m["d"] is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        parts += [0] * (3 - len(parts))
    elif len(parts) == 2:  # MM:SS
        parts = [0, *parts]
    elif len(parts) == 1:  # bare number: minutes, as Slurm reads a time limit
        parts = [0, parts[0], 0]
    hours, minutes, seconds = parts
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int | None) -> str:
    """sacct's ``[D-]HH:MM:SS``; None -> ``UNLIMITED``."""
    if seconds is None:
        return "UNLIMITED"
    days, rest = divmod(int(seconds), 86400)
    hms = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}-{hms}" if days else hms


def parse_req_mem(text: str, nnodes: int | None, ncpus: int | None) -> int | None:
    """Total bytes a job asked for from ReqMem (``64G``, ``4000Mc``, ``1Tn``).

    ``c`` means per CPU (x NCPUS), ``n`` or no suffix per node (x NNodes);
    the unit defaults to MiB as in Slurm. Empty -> None.
    """
    value = text.strip()
    if not value:
        return None
    m = _MEM_RE.match(value)
    if not m:
        raise ValueError(f"unparsable ReqMem {text!r}")
    amount = float(m["num"]) * _MEM_UNITS[m["unit"].upper()]
    count = ncpus if m["per"].lower() == "c" else nnodes
    return round(amount * (count if count is not None else 1))


def parse_gpus(alloc_tres: str) -> int:
    """GPUs allocated, from AllocTRES (``...,gres/gpu=4,...``).

    Slurm lists a typed GPU TRES (``gres/gpu:a100=4``) next to the untyped
    total (``gres/gpu=4``): the untyped entry wins when present, else the
    typed ones are summed, so a job is never counted twice.
    """
    total: int | None = None
    typed = 0
    for item in alloc_tres.split(","):
        key, sep, count = item.strip().partition("=")
        if not sep:
            continue
        if key == "gres/gpu":
            total = (total or 0) + int(count)
        elif key.startswith("gres/gpu:"):
            typed += int(count)
    return total if total is not None else typed


def parse_nodelist(text: str) -> list[str]:
    """Short host names of a Slurm node list; ``None assigned`` -> []."""
    value = text.strip()
    if value.lower() in _NO_NODES:
        return []
    try:
        return [short_host(h) for h in hostlist.expand_hostlist(value)]
    except hostlist.BadHostlist as exc:
        raise ValueError(f"bad node list {text!r}: {exc}") from None


def _int(text: str, what: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{what} is not an integer: {text!r}") from None


def _parse_record(rec: Mapping[str, str], tz: tzinfo) -> dict:
    """One sacct record -> one row of :data:`COLUMNS`; ValueError if malformed."""
    jobid = rec["JobID"].strip()
    if not _JOBID_RE.match(jobid):
        raise ValueError(f"bad job id {jobid!r}")
    nnodes = _int(rec["NNodes"], "NNodes")
    ncpus = _int(rec["NCPUS"], "NCPUS")
    state = rec["State"].strip()
    return {
        "jobid": jobid,
        "jobid_raw": rec["JobIDRaw"].strip() or jobid,
        "username": rec["User"].strip(),
        "account": rec["Account"].strip(),
        "partition": rec["Partition"].strip(),
        "qos": rec["QOS"].strip(),
        "jobname": rec["JobName"],
        "state": state.split()[0] if state else "",  # "CANCELLED by 1234"
        "exit_code": rec["ExitCode"].strip(),
        "submit_time": parse_time(rec["Submit"], tz),
        "start_time": parse_time(rec["Start"], tz),
        "end_time": parse_time(rec["End"], tz),
        "elapsed_s": parse_duration(rec["Elapsed"]),
        "timelimit_s": parse_duration(rec["Timelimit"]),
        "nnodes": nnodes,
        "ncpus": ncpus,
        "req_mem_bytes": parse_req_mem(rec["ReqMem"], nnodes, ncpus),
        "ngpus": parse_gpus(rec["AllocTRES"]),
        "nodelist": rec["NodeList"].strip(),
        "hosts": parse_nodelist(rec["NodeList"]),
        "req_cpus": _int(rec.get("ReqCPUS", ""), "ReqCPUS"),
        "req_tres": rec.get("ReqTRES", "").strip() or None,
        "submit_line": rec.get("SubmitLine", "").strip() or None,
    }


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


def parse_accounting(
    text: str, source: str, tz: str = "UTC"
) -> tuple[pl.DataFrame, list[ParseIssue]]:
    """Parse one ``sacct --parsable2`` dump into a frame of :data:`COLUMNS`.

    Fields are taken by the header's names, so a dump with extra or
    reordered columns still loads. Job steps (``123.batch``) are skipped;
    a job listed twice keeps its last line; every malformed line becomes a
    ParseIssue (``source``, 1-based line number) and the rest still loads.
    """
    zone = ZoneInfo(tz)
    issues: list[ParseIssue] = []
    header: list[str] | None = None
    rows: dict[str, dict] = {}
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("|")
        if header is None:
            missing = [f for f in FIELDS if f not in fields and f not in OPTIONAL_FIELDS]
            if missing:
                issues.append(ParseIssue(source, lineno, line, f"header lacks {missing}"))
                return empty_frame(), issues
            header = fields
            continue
        if len(fields) > len(header) and header[-1] == "SubmitLine":  # '|' in the command
            fields = [*fields[:len(header) - 1], "|".join(fields[len(header) - 1:])]
        if len(fields) != len(header):
            reason = f"expected {len(header)} fields, got {len(fields)}"
            issues.append(ParseIssue(source, lineno, line, reason))
            continue
        rec = dict(zip(header, fields, strict=True))
        if "." in rec["JobID"]:  # a job step: the job line carries the job
            continue
        try:
            row = _parse_record(rec, zone)
        except ValueError as exc:
            issues.append(ParseIssue(source, lineno, line, str(exc)))
            continue
        rows.pop(row["jobid"], None)  # last line wins, in its own position
        rows[row["jobid"]] = row
    if not rows:
        return empty_frame(), issues
    return pl.DataFrame(list(rows.values()), schema=COLUMNS, orient="row"), issues


def _format_value(field: str, value: object) -> str:
    if value is None:
        return "Unknown" if field in ("Submit", "Start", "End") else ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{field}: naive datetime {value!r}")
        return value.astimezone(UTC).strftime(SLURM_TIME_FORMAT)
    if isinstance(value, (list, tuple)):
        return hostlist.collect_hostlist(list(value)) if value else "None assigned"
    text = str(value)
    if "|" in text or "\n" in text:
        raise ValueError(f"{field}: value {text!r} contains a separator")
    return text


def format_accounting(rows: Iterable[Mapping[str, object]]) -> str:
    """Write rows keyed by :data:`FIELDS` as an ``sacct --parsable2`` dump.

    Values are written as sacct prints them: datetimes in UTC with
    :data:`SLURM_TIME_FORMAT`, None times as ``Unknown``, a host list as a
    compressed node list; strings verbatim. Missing fields are empty.
    """
    lines = ["|".join(FIELDS)]
    for row in rows:
        lines.append("|".join(_format_value(f, row.get(f)) for f in FIELDS))
    return "\n".join(lines) + "\n"
