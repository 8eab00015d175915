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

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import hostlist
import polars as pl
from hpcperf_monitor.rawformat import ParseIssue, parse_uint, split_lines

#: ``SLURM_TIME_FORMAT`` the dump runs sacct with.
SLURM_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

_NULL_TIMES = {"", "unknown", "none", "n/a"}
_NULL_LIMITS = {"", "unlimited", "partition_limit", "invalid", "none"}
_NO_NODES = {"", "none assigned", "(null)", "none"}
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
# ASCII digits only, as everywhere in our formats ([0-9], never \d: "٨" is a \d)
# [D-]HH:MM:SS[.fff], MM:SS[.fff], D-HH, D-HH:MM
_DURATION_RE = re.compile(
    r"^(?:(?P<d>[0-9]+)-)?(?:(?P<a>[0-9]+)(?::(?P<b>[0-9]+))?(?::(?P<c>[0-9]+))?)(?:\.[0-9]+)?$"
)
_MEM_RE = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>[KMGTP]?)(?P<per>[nc]?)$",
                     re.IGNORECASE)
_MEM_UNITS = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_JOBID_RE = re.compile(r"^[0-9]+(?:_(?:[0-9]+|\[[0-9,%:-]*\]))?(?:\+[0-9]+)?$")
_JOBID_RAW_RE = re.compile(r"^[0-9]*$")
#: most hosts one NodeList may name (Slurm's own limit is 64k nodes per job)
MAX_HOSTS = 100_000
_BLANKS = " \t"
def short_host(name: str) -> str:
    """The one normal form of a host name: lower case, without its domain.

    sacct prints short names where the monitor may report an FQDN
    (``c571-001.stampede3.tacc.utexas.edu``); every join on hosts goes
    through this function on both sides.
    """
    return name.strip().split(".", 1)[0].lower()


def short_host_expr(names: pl.Expr) -> pl.Expr:
    """``short_host`` over a column, for the vectorised reader (same rule, one place)."""
    return names.str.strip_chars().str.to_lowercase().str.split(".").list.first()


def parse_time(text: str, tz: tzinfo = UTC) -> datetime | None:
    """An sacct time in UTC; ``Unknown``/``None``/empty -> None.

    Times without an offset are in ``tz`` (sacct's local zone). Raises
    ValueError on anything else, other scripts' digits included.
    """
    value = text.strip(_BLANKS)
    if value.lower() in _NULL_TIMES:
        return None
    if value.isascii():  # strptime's %Y would take "٢٠٢٦"
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
    value = text.strip(_BLANKS)
    if value.lower() in _NULL_LIMITS:
        return None
    m = _DURATION_RE.fullmatch(value)
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


def _mem_spec(text: str) -> tuple[float, str] | None:
    """ReqMem as (bytes, "c" per CPU | "n" per node); empty -> None."""
    value = text.strip(_BLANKS)
    if not value:
        return None
    m = _MEM_RE.fullmatch(value)
    if not m:
        raise ValueError(f"unparsable ReqMem {text!r}")
    amount = float(m["num"]) * _MEM_UNITS[m["unit"].upper()]
    if not math.isfinite(amount):
        raise ValueError(f"ReqMem {text[:40]!r} is out of range")
    return amount, "c" if m["per"].lower() == "c" else "n"


def _mem_total(spec: tuple[float, str] | None, nnodes: int | None, ncpus: int | None
               ) -> int | None:
    if spec is None:
        return None
    amount, per = spec
    count = ncpus if per == "c" else nnodes
    total = amount * (count if count is not None else 1)
    if not math.isfinite(total):
        raise ValueError("ReqMem times the count is out of range")
    return round(total)


def parse_req_mem(text: str, nnodes: int | None, ncpus: int | None) -> int | None:
    """Total bytes a job asked for from ReqMem (``64G``, ``4000Mc``, ``1Tn``).

    ``c`` means per CPU (x NCPUS), ``n`` or no suffix per node (x NNodes);
    the unit defaults to MiB as in Slurm. Empty -> None.
    """
    return _mem_total(_mem_spec(text), nnodes, ncpus)


def parse_gpus(alloc_tres: str) -> int:
    """GPUs allocated, from AllocTRES (``...,gres/gpu=4,...``).

    Slurm lists a typed GPU TRES (``gres/gpu:a100=4``) next to the untyped
    total (``gres/gpu=4``): the untyped entry wins when present, else the
    typed ones are summed, so a job is never counted twice. A GPU count that
    is not a plain ASCII integer raises ValueError.
    """
    total: int | None = None
    typed = 0
    for item in alloc_tres.split(","):
        key, sep, count = item.strip(_BLANKS).partition("=")
        if not sep or not (key == "gres/gpu" or key.startswith("gres/gpu:")):
            continue
        try:
            n = parse_uint(count)
        except ValueError:
            raise ValueError(f"GPU count {item.strip(_BLANKS)!r} is not an integer") from None
        if key == "gres/gpu":
            total = (total or 0) + n
        else:
            typed += n
    return total if total is not None else typed


def parse_nodelist(text: str) -> list[str]:
    """Short host names of a Slurm node list; ``None assigned`` -> [].

    At most :data:`MAX_HOSTS` names: ``a[1-99999],b[1-99999],...`` is expanded
    part by part, so a hostile list cannot take the memory of the whole day.
    """
    value = text.strip(_BLANKS)
    if value.lower() in _NO_NODES:
        return []
    hosts: list[str] = []
    try:
        for part in _top_level_parts(value):
            hosts.extend(short_host(h) for h in hostlist.expand_hostlist(part))
            if len(hosts) > MAX_HOSTS:
                raise ValueError(f"node list {text[:60]!r} names over {MAX_HOSTS} hosts")
    except hostlist.BadHostlist as exc:
        raise ValueError(f"bad node list {text[:200]!r}: {exc}") from None
    return hosts


def _top_level_parts(value: str) -> list[str]:
    """``a[1-2],b,c[3,5]`` -> ``["a[1-2]", "b", "c[3,5]"]``: commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


# --- the dump's fields -----------------------------------------------------------------


def _text(value: str) -> str:
    return value.strip(_BLANKS)


def _jobid(value: str) -> str:
    jobid = value.strip(_BLANKS)
    if not _JOBID_RE.fullmatch(jobid):
        raise ValueError(f"bad job id {jobid!r}")
    return jobid


def _jobid_raw(value: str) -> str | None:
    raw = value.strip(_BLANKS)
    if not _JOBID_RAW_RE.fullmatch(raw):
        raise ValueError(f"bad raw job id {raw!r}")
    return raw or None  # empty: the job id's own (filled in below)


def _state(value: str) -> str:
    state = value.strip(_BLANKS)
    return state.split(" ", 1)[0]  # "CANCELLED by 1234"


def _optional_text(value: str) -> str | None:
    return value.strip(_BLANKS) or None


def _count(value: str) -> int | None:
    value = value.strip(_BLANKS)
    return parse_uint(value) if value else None


def _nodelist(value: str) -> tuple[str, list[str]]:
    return value.strip(_BLANKS), parse_nodelist(value)


@dataclass(frozen=True)
class Field:
    """One sacct field of the dump: its ``job_data`` column and how its text is read.

    ``read`` takes the field's text and the dump's time zone and raises on a
    bad value. A bad ``key`` field sets the whole line aside (a job without
    its id or its times cannot be placed); any other bad field loads as NULL
    and is reported. Adding a field to the dump is one line in :data:`SPEC`
    (and the column in ``db/schema.py``).
    """

    sacct: str
    column: str
    dtype: pl.DataType
    read: Callable[[str, tzinfo], object]
    key: bool = False
    #: added to the dump later: older dumps without it still parse (NULL)
    optional: bool = False


def _plain(fn: Callable[[str], object]) -> Callable[[str, tzinfo], object]:
    return lambda text, _tz: fn(text)


_UTC_US = pl.Datetime("us", "UTC")

#: Every field of the dump, in dump order (``sacct --format=<FIELDS>``).
SPEC: tuple[Field, ...] = (
    Field("JobID", "jobid", pl.Utf8(), _plain(_jobid), key=True),
    Field("JobIDRaw", "jobid_raw", pl.Utf8(), _plain(_jobid_raw), key=True),
    Field("User", "username", pl.Utf8(), _plain(_text)),
    Field("Account", "account", pl.Utf8(), _plain(_text)),
    Field("Partition", "partition", pl.Utf8(), _plain(_text)),
    Field("QOS", "qos", pl.Utf8(), _plain(_text)),
    Field("JobName", "jobname", pl.Utf8(), _plain(str)),  # verbatim: names may end in blanks
    Field("State", "state", pl.Utf8(), _plain(_state)),
    Field("ExitCode", "exit_code", pl.Utf8(), _plain(_text)),
    Field("Submit", "submit_time", _UTC_US, parse_time),
    Field("Start", "start_time", _UTC_US, parse_time, key=True),
    Field("End", "end_time", _UTC_US, parse_time, key=True),
    Field("Elapsed", "elapsed_s", pl.Int64(), _plain(parse_duration)),
    Field("Timelimit", "timelimit_s", pl.Int64(), _plain(parse_duration)),
    Field("NNodes", "nnodes", pl.Int32(), _plain(_count)),
    Field("NCPUS", "ncpus", pl.Int32(), _plain(_count)),
    Field("ReqMem", "req_mem_bytes", pl.Int64(), _plain(_mem_spec)),  # x count: _derive
    Field("AllocTRES", "ngpus", pl.Int32(), _plain(parse_gpus)),
    Field("NodeList", "nodelist", pl.Utf8(), _plain(_nodelist)),  # and hosts: _derive
    # for advice in the form the job was asked for; SubmitLine stays last: it may hold '|'
    Field("ReqCPUS", "req_cpus", pl.Int32(), _plain(_count), optional=True),
    Field("ReqTRES", "req_tres", pl.Utf8(), _plain(_optional_text), optional=True),
    Field("SubmitLine", "submit_line", pl.Utf8(), _plain(_optional_text), optional=True),
)  # fmt: skip

#: sacct field names, in dump order (``sacct --format=<','.join(FIELDS)>``).
FIELDS: tuple[str, ...] = tuple(f.sacct for f in SPEC)

#: Parsed frame: column -> polars dtype (matches the ``job_data`` table).
COLUMNS: dict[str, pl.DataType] = {
    **{f.column: f.dtype for f in SPEC},
    "hosts": pl.List(pl.Utf8()),  # NodeList expanded to short host names
}

_RANGES = {pl.Int32(): (-(2**31), 2**31 - 1), pl.Int64(): (-(2**63), 2**63 - 1)}


class BadField(ValueError):
    """A field's value cannot be used; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class AccountingIssue(ParseIssue):
    """A bad line of a dump: which field, and what became of the line.

    ``action`` is ``loaded with NULL`` (a bad non-key field), ``loaded as
    given`` (values that contradict each other), ``set aside`` (the line is
    not loaded) or ``file rejected`` (nothing of the file is loaded).
    """

    field: str | None = None
    action: str = "set aside"


def _check(field: Field, text: str, value: object) -> object:
    """The value if PostgreSQL can hold it in the field's column; BadField otherwise."""
    if "\x00" in text:
        raise BadField(field.sacct, "NUL byte in value")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadField(field.sacct, "not valid UTF-8") from None
    bounds = _RANGES.get(field.dtype)
    if bounds and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
        raise BadField(field.sacct, f"{value} is out of range for {field.dtype}")
    return value


def _read_fields(rec: Mapping[str, str], tz: tzinfo) -> tuple[dict, list[BadField]]:
    """Every field read on its own: (values by sacct name, the bad ones)."""
    values: dict[str, object] = {}
    bad: list[BadField] = []
    for field in SPEC:
        text = rec.get(field.sacct, "") if field.optional else rec[field.sacct]
        try:
            values[field.sacct] = _check(field, text, field.read(text, tz))
        except BadField as exc:
            bad.append(exc)
            values[field.sacct] = None
        except Exception as exc:  # noqa: BLE001 - one bad value never fails the day
            bad.append(BadField(field.sacct, str(exc) or type(exc).__name__))
            values[field.sacct] = None
    return values, bad


def _derive(values: dict, bad: list[BadField]) -> dict:
    """The frame row: columns that combine fields (ReqMem x count, NodeList -> hosts)."""
    row = {f.column: values[f.sacct] for f in SPEC}
    row["jobid_raw"] = row["jobid_raw"] or row["jobid"]
    nodelist = values["NodeList"]
    row["nodelist"], row["hosts"] = nodelist if nodelist is not None else (None, [])
    bad_names = {b.field for b in bad}
    mem = values["ReqMem"]
    per = ("NCPUS" if mem[1] == "c" else "NNodes") if mem is not None else None
    if per in bad_names:
        row["req_mem_bytes"] = None
        bad.append(BadField("ReqMem", f"needs {per}, which is bad"))
    else:
        try:
            row["req_mem_bytes"] = _check(SPEC[FIELDS.index("ReqMem")], "",
                                          _mem_total(mem, row["nnodes"], row["ncpus"]))
        except ValueError as exc:
            row["req_mem_bytes"] = None
            bad.append(exc if isinstance(exc, BadField) else BadField("ReqMem", str(exc)))
    return row


def _contradictions(row: dict) -> list[BadField]:
    """Values that are each fine but disagree: reported, loaded as given."""
    out = []
    start, end = row["start_time"], row["end_time"]
    if start is not None and end is not None and end < start:
        out.append(BadField("End", f"{end.isoformat()} is before Start {start.isoformat()}"))
    nnodes, hosts = row["nnodes"], row["hosts"]
    if nnodes is not None and hosts and nnodes != len(hosts):
        out.append(BadField("NNodes", f"{nnodes} but NodeList names {len(hosts)} hosts"))
    return out


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


def _lines(data: str | bytes) -> list[str]:
    """The dump's lines; one line definition for every reader (``rawformat.split_lines``).

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``):
    the field holding them is reported, and the quarantined line is the bytes
    as they were (``line.encode("utf-8", "surrogateescape")``).
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="surrogateescape")
    return split_lines(data)


def _header_problem(fields: list[str]) -> str | None:
    missing = [f.sacct for f in SPEC if f.sacct not in fields and not f.optional]
    if missing:
        return f"header lacks {missing}"
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        return f"header names {twice} more than once: which to use is unknown"
    return None


def parse_accounting(
    data: str | bytes, source: str, tz: str = "UTC"
) -> tuple[pl.DataFrame, list[AccountingIssue]]:
    r"""Parse one ``sacct --parsable2`` dump into a frame of :data:`COLUMNS`.

    Fields are taken by the header's names, so a dump with extra or
    reordered columns still loads; a header that lacks a field or names one
    twice rejects the file. Lines end at ``\n`` (``\r\n`` accepted), as in
    the raw stats format. Job steps (``123.batch``) are skipped; a job listed
    twice keeps its last line. Every bad line becomes an :class:`AccountingIssue`
    (``source``, 1-based line number, field) and the rest still loads: a bad
    key field (:attr:`Field.key`) or a wrong field count sets the line aside,
    any other bad field loads as NULL, End before Start and NNodes unlike
    the NodeList load as given.
    """
    zone = ZoneInfo(tz)
    issues: list[AccountingIssue] = []
    header: list[str] | None = None
    rows: dict[str, dict] = {}
    for lineno, line in enumerate(_lines(data), start=1):
        if not line.strip(_BLANKS):
            continue
        fields = line.split("|")
        if header is None:
            problem = _header_problem(fields)
            if problem:
                issues.append(AccountingIssue(source, lineno, line, f"{problem}; file rejected",
                                              action="file rejected"))
                return empty_frame(), issues
            header = fields
            continue
        if len(fields) > len(header) and header[-1] == "SubmitLine":  # '|' in the command
            fields = [*fields[:len(header) - 1], "|".join(fields[len(header) - 1:])]
        if len(fields) != len(header):
            reason = f"expected {len(header)} fields, got {len(fields)}; set aside"
            issues.append(AccountingIssue(source, lineno, line, reason))
            continue
        rec = dict(zip(header, fields, strict=True))
        if "." in rec["JobID"]:  # a job step: the job line carries the job
            continue
        row, line_issues = _parse_line(rec, zone)
        issues.extend(AccountingIssue(source, lineno, line, reason, field, action)
                      for field, reason, action in line_issues)
        if row is not None:
            rows.pop(row["jobid"], None)  # last line wins, in its own position
            rows[row["jobid"]] = row
    if not rows:
        return empty_frame(), issues
    return pl.DataFrame(list(rows.values()), schema=COLUMNS, orient="row"), issues


def _parse_line(rec: Mapping[str, str], tz: tzinfo
                ) -> tuple[dict | None, list[tuple[str, str, str]]]:
    """One record -> (row or None when set aside, [(field, reason, action)])."""
    values, bad = _read_fields(rec, tz)
    keys = [b for b in bad if b.field in _KEYS]
    if keys:
        return None, [(b.field, f"{b}; set aside", "set aside") for b in keys]
    row = _derive(values, bad)
    out = [(b.field, f"{b}; loaded with {b.field} NULL", "loaded with NULL") for b in bad]
    out += [(b.field, f"{b}; loaded as given", "loaded as given") for b in _contradictions(row)]
    return row, out


_KEYS = {f.sacct for f in SPEC if f.key}


def issues_by_line(issues: Iterable[AccountingIssue]) -> list[dict]:
    """One record per bad line, for metadata, checks and quarantine.

    Keys: ``source``, ``line``, ``fields`` (comma-separated), ``action`` (the
    gravest: file rejected > set aside > loaded with NULL > loaded as given),
    ``reasons`` (a list, one per issue) and ``text`` (the line as read).
    """
    grave = ["loaded as given", "loaded with NULL", "set aside", "file rejected"]
    out: dict[tuple[str, int], dict] = {}
    for i in issues:
        rec = out.setdefault((i.source, i.line), {
            "source": i.source, "line": i.line, "fields": [], "action": i.action,
            "reasons": [], "text": i.text})
        if i.field and i.field not in rec["fields"]:
            rec["fields"].append(i.field)
        rec["reasons"].append(i.reason)
        if grave.index(i.action) > grave.index(rec["action"]):
            rec["action"] = i.action
    return [{**r, "fields": ", ".join(r["fields"])} for r in out.values()]


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
