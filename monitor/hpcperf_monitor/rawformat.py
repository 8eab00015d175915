"""Reader and writer for the raw stats text format of TACC's ``hpcperfstatsd``.

The monitor writes it and the pipeline reads it, so both live here in the
monitor distribution (standard library only: compute nodes may lack numpy).
The grammar is written down in ``docs/raw-format.md``. The reader never
raises on bad input: every line it cannot use becomes a :class:`ParseIssue`
carrying the source name and line number, and the rest of the text is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union

Number = Union[int, float]

#: Mark lines the pipeline understands; any other ``%`` line is kept verbatim.
MARK_BEGIN = "begin"
MARK_END = "end"
MARK_SEQ = "seq"
#: every job running on a node that several jobs share (the record line names one)
MARK_JOBS = "jobs"
#: the GPUs Slurm gave one job: ``%gpus <jobid> <list>``
MARK_GPUS = "gpus"

_UNIT_RE = re.compile(r"^(\d*)(.*)$")


@dataclass(frozen=True)
class Event:
    """One column of a type's schema (``name,opt,opt``)."""

    name: str
    cumulative: bool = False  # E: a counter; rates come from deltas
    control: bool = False  # C: a programmed event selector, not data
    unit: str | None = None  # unit after the multiplier, e.g. "B" for U=512B
    multiplier: int = 1  # 512 for U=512B
    width: int = 64  # W=<bits>: counter width for roll-over
    slow: bool = False  # R=S: only sampled on the slow tier
    extra: tuple[str, ...] = ()  # options we do not interpret, kept for writing

    @classmethod
    def parse(cls, spec: str) -> Event:
        """Parse ``rd_sectors,E,U=512B``; raises ValueError on a bad option."""
        name, *opts = spec.split(",")
        if not name:
            raise ValueError(f"empty event name in {spec!r}")
        kw: dict = {}
        extra: list[str] = []
        for opt in opts:
            if opt == "E":
                kw["cumulative"] = True
            elif opt == "C":
                kw["control"] = True
            elif opt.startswith("U="):
                mult, unit = _UNIT_RE.match(opt[2:]).groups()  # type: ignore[union-attr]
                kw["multiplier"] = int(mult) if mult else 1
                kw["unit"] = unit or None
            elif opt.startswith("W="):
                width = int(opt[2:])
                if not 1 <= width <= 64:
                    raise ValueError(f"counter width {width} out of range in {spec!r}")
                kw["width"] = width
            elif opt == "R=S":
                kw["slow"] = True
            elif opt:
                extra.append(opt)
        return cls(name=name, extra=tuple(extra), **kw)

    def spec(self) -> str:
        """The schema token this event was read from (canonical option order)."""
        parts = [self.name]
        if self.cumulative:
            parts.append("E")
        if self.control:
            parts.append("C")
        if self.unit is not None or self.multiplier != 1:
            mult = str(self.multiplier) if self.multiplier != 1 else ""
            parts.append(f"U={mult}{self.unit or ''}")
        if self.width != 64:
            parts.append(f"W={self.width}")
        if self.slow:
            parts.append("R=S")
        parts.extend(self.extra)
        return ",".join(parts)


@dataclass(frozen=True)
class Schema:
    """A type's ordered events, declared once per header by a ``!type`` line."""

    type: str
    events: tuple[Event, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events)

    def fast_events(self) -> tuple[Event, ...]:
        """Events present in a ``@fast`` sample: those not marked ``R=S``."""
        return tuple(e for e in self.events if not e.slow)


@dataclass
class Header:
    """``$`` properties, ``!`` schemas and ``@type`` device lists of one header."""

    properties: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, Schema] = field(default_factory=dict)
    devices: dict[str, list[str]] = field(default_factory=dict)
    #: epoch of the first sample after this header (not written; derived)
    first_time: float | None = None

    @property
    def hostname(self) -> str | None:
        return self.properties.get("hostname")

    @property
    def uptime(self) -> float | None:
        value = self.properties.get("uptime")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


@dataclass
class Sample:
    """One ``<epoch> <jobid> <host>`` record and its data lines.

    ``rows[type][device]`` holds the values in the order of ``events`` of
    that type (all events, or only the fast ones for a ``@fast`` sample).
    """

    time: float
    jobid: str
    host: str
    header: Header
    rows: dict[str, dict[str, tuple[Number, ...]]] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)
    tier: str | None = None  # "fast" / "full" from a row marker, else None
    line: int = 0  # line number of the record line in its source
    time_text: str = ""  # the epoch as written, so rewriting is exact

    @property
    def job(self) -> str | None:
        """The job id, or None for ``-`` (no job on the node)."""
        return None if self.jobid == "-" else self.jobid

    def events(self, type_: str) -> tuple[Event, ...]:
        schema = self.header.schemas[type_]
        return schema.fast_events() if self.tier == "fast" else schema.events

    def mark_values(self, name: str) -> list[str]:
        """Arguments of every ``%name arg`` mark line of this sample."""
        out = []
        for mark in self.marks:
            word, _, rest = mark.partition(" ")
            if word == name:
                out.append(rest.strip())
        return out

    @property
    def seq(self) -> int | None:
        """The monitor's per-host sequence number, when it wrote one."""
        for value in self.mark_values(MARK_SEQ):
            try:
                return int(value)
            except ValueError:
                return None
        return None


@dataclass(frozen=True)
class ParseIssue:
    """A line the reader could not use, and why; goes to quarantine."""

    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}: {self.text[:120]!r}"


@dataclass
class RawStats:
    """Everything read from one file or message."""

    headers: list[Header] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)


def _number(text: str) -> Number:
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {text!r}") from None
        return value


def read_raw(
    text: str | Iterable[str],
    source: str = "<text>",
    header: Header | None = None,
    first_line: int = 1,
) -> RawStats:
    """Parse raw stats text.

    ``header`` continues a file whose header was read earlier (a message
    without ``$`` lines is appended to its host's current archive file and
    uses that file's schemas). ``first_line`` numbers lines for issues.
    """
    lines: Iterable[str] = text.splitlines() if isinstance(text, str) else text
    out = RawStats()
    current_header = header
    in_header = False  # still reading $ ! @type lines of a header block
    sample: Sample | None = None
    tier: str | None = None
    lineno = first_line - 1

    def issue(reason: str, line: str) -> None:
        out.issues.append(ParseIssue(source, lineno, line, reason))

    for lineno, raw_line in enumerate(lines, start=first_line):
        line = raw_line.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        if "\x00" in line:
            issue("NUL byte in line", line.replace("\x00", "\\0"))
            continue
        first = line[0]
        if first == "$":
            if not in_header:
                current_header = Header()
                out.headers.append(current_header)
                in_header = True
                sample = None
            key, _, value = line[1:].partition(" ")
            if not key:
                issue("empty header key", line)
                continue
            current_header.properties[key] = value.strip()
            continue
        if first == "!":
            if current_header is None or not in_header:
                issue("schema line outside a header", line)
                continue
            type_, *specs = line[1:].split() or [""]
            if not type_ or not specs:
                issue("schema line without events", line)
                continue
            try:
                events = tuple(Event.parse(s) for s in specs)
            except ValueError as exc:
                issue(f"bad schema: {exc}", line)
                continue
            if len({e.name for e in events}) != len(events):
                issue("duplicate event name in schema", line)
                continue
            current_header.schemas[type_] = Schema(type_, events)
            continue
        if first == "@":
            word, *rest = line[1:].split() or [""]
            if not word:
                issue("device list without a type", line)
                continue
            if word in ("fast", "full") and not rest:
                tier = word
                if sample is not None and not sample.rows:
                    sample.tier = word
                continue
            if current_header is None:
                issue("device list outside a header", line)
                continue
            current_header.devices[word] = rest
            continue
        if first == "%":
            if sample is None:
                issue("mark line before any sample", line)
                continue
            sample.marks.append(line[1:].strip())
            continue
        parts = line.split()
        if first.isdigit():
            in_header = False
            if len(parts) != 3:
                issue("record line needs '<epoch> <jobid> <host>'", line)
                sample = None
                continue
            try:
                stamp = float(parts[0])
            except ValueError:
                issue("record line epoch is not a number", line)
                sample = None
                continue
            if current_header is None:
                issue("sample before any header", line)
                sample = None
                continue
            sample = Sample(
                time=stamp,
                jobid=parts[1],
                host=parts[2],
                header=current_header,
                tier=tier,
                line=lineno,
                time_text=parts[0],
            )
            tier = None
            if current_header.first_time is None:
                current_header.first_time = stamp
            out.samples.append(sample)
            continue
        # data line: type device values...
        if sample is None:
            issue("data line outside a sample", line)
            continue
        if len(parts) < 3:
            issue("data line needs '<type> <device> <values>'", line)
            continue
        type_, device, *values = parts
        schema = current_header.schemas.get(type_) if current_header else None
        if schema is None:
            issue(f"type {type_!r} has no schema", line)
            continue
        expected = len(schema.fast_events()) if sample.tier == "fast" else len(schema.events)
        if len(values) != expected:
            issue(f"{type_} expects {expected} values, got {len(values)}", line)
            continue
        try:
            nums = tuple(_number(v) for v in values)
        except ValueError as exc:
            issue(f"bad value: {exc}", line)
            continue
        devs = sample.rows.setdefault(type_, {})
        if device in devs:
            issue(f"duplicate device {device!r} for {type_} in one sample", line)
            continue
        devs[device] = nums
    return out


def iter_header_lines(header: Header) -> Iterator[str]:
    for key, value in header.properties.items():
        yield f"${key} {value}".rstrip()
    for type_, schema in header.schemas.items():
        yield f"!{type_} " + " ".join(e.spec() for e in schema.events)
    for type_, devs in header.devices.items():
        yield f"@{type_} " + " ".join(devs)


def _format(value: Number) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _join(values: tuple[Number, ...]) -> str:
    # the common case, all integers, takes the fast path
    if all(type(v) is int for v in values):
        return " ".join(map(str, values))
    return " ".join(_format(v) for v in values)


def iter_sample_lines(sample: Sample) -> Iterator[str]:
    if sample.tier is not None:
        yield f"@{sample.tier}"
    stamp = sample.time_text or f"{sample.time:.6f}"
    yield f"{stamp} {sample.jobid} {sample.host}"
    for mark in sample.marks:
        yield f"%{mark}"
    for type_, devs in sample.rows.items():
        for device, values in devs.items():
            yield f"{type_} {device} {_join(values)}"


def write_header(header: Header) -> str:
    return "".join(line + "\n" for line in iter_header_lines(header))


def write_sample(sample: Sample) -> str:
    return "".join(line + "\n" for line in iter_sample_lines(sample)) + "\n"


def write_raw(raw: RawStats) -> str:
    """Write headers and samples back; ``read_raw`` of the result is equal."""
    parts: list[str] = []
    last: Header | None = None
    for sample in raw.samples:
        if sample.header is not last:
            parts.append(write_header(sample.header) + "\n")
            last = sample.header
        parts.append(write_sample(sample))
    return "".join(parts)


def boot_time(header: Header) -> float | None:
    """Approximate boot epoch of the node from the header's ``$uptime``.

    Counters restart at boot, so two samples with different boot times must
    not be differenced. The header is written just before its first sample,
    so that sample's time minus the uptime is the boot time to within the
    few milliseconds between them.
    """
    uptime = header.uptime
    if uptime is None or header.first_time is None:
        return None
    return header.first_time - uptime
