"""Reader and writer for the raw stats text format of TACC's ``hpcperfstatsd``.

The monitor writes it and the pipeline reads it, so both live here in the
monitor distribution (standard library only: compute nodes may lack numpy).
The grammar is written down in ``docs/raw-format.md``. The reader never
raises on bad input: every line it cannot use becomes a :class:`ParseIssue`
carrying the source name and line number, and the rest of the text is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
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

_UNIT_RE = re.compile(r"([0-9]*)(.*)", re.DOTALL)

# The grammar is ASCII (docs/raw-format.md). A line ends at "\n" ("\r\n"
# accepted); fields are separated by runs of spaces and tabs only; numbers are
# plain ASCII decimals. Python's own str.splitlines, str.split, int and float
# accept far more (U+2028 line breaks, "\x0c" blanks, "٨" digits, "8_051_233",
# "1e999"), which would let two readers of one text disagree.
_DIGITS = "0123456789"
_UINT_RE = re.compile(r"[0-9]+")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
#: a data line's values: plain decimals separated by blanks
_VALUES_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[ \t]+-?[0-9]+(?:\.[0-9]+)?)*")
_EPOCH_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# a record line's host and job id: ASCII (the drain checks hosts more strictly);
# a host name has at most 253 characters (RFC 1123), a job id 128
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_JOBID_RE = re.compile(r"[!-~]{1,128}")
#: the longest line any reader reads (characters); a longer one is reported
#: unread, so one giant line costs its own bytes, not a frame or a token list
#: of it (real lines stay under a few KB: 1024-CPU device lists, 100 events)
MAX_LINE = 1 << 20
#: the largest ``U=`` multiplier (2^53: exact as a float factor); real ones are
#: 4, 64, 512
MAX_MULTIPLIER = 1 << 53
_BLANKS = " \t"
_FIELD_SEP = re.compile(r"[ \t]+")
# whitespace str.split() would split at but the grammar does not
_ODD_SPACE = re.compile(r"[^\S \t\n]")
_ODD_ASCII_SPACE = "\r\x0b\x0c\x1c\x1d\x1e\x1f"

#: 2000-01-01T00:00:00Z: no monitor of ours or TACC's ran before it.
EPOCH_EARLIEST = 946684800.0
#: 9999-12-31T23:59:59Z: the largest epoch any reader accepts, clock or not
#: (datetime's limit; microseconds still fit in an Int64 far beyond it).
EPOCH_MAX = 253402300799.0
#: how far past its receive time a sample's epoch may lie (clock skew)
EPOCH_MAX_AHEAD_S = 86400.0


def split_lines(text: str) -> list[str]:
    r"""The lines of a text: it is cut at ``\n`` only, and one ``\r`` before it goes.

    The one definition of a line for every reader of the raw format (and of
    accounting dumps): ``\x0c``, ``\x85``, U+2028 and the other characters
    ``str.splitlines`` also breaks at are ordinary characters of a line.
    A final ``\n`` does not start another line.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def strip_line_end(line: str) -> str:
    r"""A line given by a caller, without its ``\n`` or ``\r\n``."""
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def is_record_line(line: str) -> bool:
    """Whether a line opens a sample: its first character is an ASCII digit."""
    return line[:1] in _DIGITS and line[:1] != ""


def parse_uint(text: str) -> int:
    """A plain ASCII decimal integer (``0``-``9`` only); ValueError otherwise."""
    if not _UINT_RE.fullmatch(text):
        raise ValueError(f"not a plain decimal integer: {text!r}")
    return int(text)


def parse_number(text: str) -> Number:
    """A value of a data line: ``-?[0-9]+(.[0-9]+)?``, finite as a 64-bit float.

    An int when there is no point (counters exceed 2^53), else a float.
    Raises ValueError on anything else (``1e5``, ``+1``, ``.5``, ``inf``, ``٨``).
    """
    if not _NUMBER_RE.fullmatch(text):
        raise ValueError(f"not a plain decimal number: {text!r}")
    return _decimal(text)


def _decimal(text: str) -> Number:
    """A token already known to match the number grammar."""
    if len(text) > 300 and math.isinf(float(text)):
        raise ValueError(f"number out of range: {text[:40]!r}...")
    return float(text) if "." in text else int(text)


def parse_epoch(text: str) -> float | None:
    """Epoch seconds of a record line, or None where it is not acceptable.

    Acceptable: a plain ASCII decimal (``[0-9]+(.[0-9]+)?``: no sign,
    exponent, ``_``, ``inf`` or ``nan``) no later than :data:`EPOCH_MAX`.
    This is the static rule every reader applies, archived files included;
    :func:`epoch_in_window` adds the receive-time window for live messages.
    """
    if not _EPOCH_RE.fullmatch(text):
        return None
    value = float(text)
    return value if value <= EPOCH_MAX else None


def epoch_in_window(
    epoch: float,
    received: float,
    earliest: float = EPOCH_EARLIEST,
    max_ahead_s: float = EPOCH_MAX_AHEAD_S,
) -> str | None:
    """Why a live sample's epoch is not sane, or None when it is.

    ``received`` is the epoch at which the message arrived. A sample may be
    old (a spool replayed after an outage) but not before ``earliest``, and
    not more than ``max_ahead_s`` after it was received (clock skew). Only
    the drain and the importer ask: reading an archived file never compares
    with the clock.
    """
    if not earliest <= epoch <= received + max_ahead_s:
        return (f"epoch {epoch!r} outside the sane window [{earliest!r}, "
                f"receive time {received!r} + {max_ahead_s!r} s]")
    return None


def window_issues(
    raw: RawStats,
    received: float,
    source: str = "<text>",
    earliest: float = EPOCH_EARLIEST,
    max_ahead_s: float = EPOCH_MAX_AHEAD_S,
) -> list[ParseIssue]:
    """One issue per sample of ``raw`` whose epoch fails :func:`epoch_in_window`."""
    issues = []
    for s in raw.samples:
        reason = epoch_in_window(s.time, received, earliest, max_ahead_s)
        if reason is not None:
            text = f"{s.time_text} {s.jobid} {s.host}"
            issues.append(ParseIssue(source, s.line, text, reason))
    return issues


def _splitter(text: str):
    """Field splitter for a text: ``str.split`` where it agrees with the grammar."""
    if text.isascii():  # the common case: a few memchr scans, no regex over the text
        odd = any(c in text for c in _ODD_ASCII_SPACE)
    else:
        odd = _ODD_SPACE.search(text) is not None
    return _split_fields if odd else str.split


def _split_fields(line: str) -> list[str]:
    """Fields of a line separated by runs of spaces and tabs, nothing else."""
    line = line.strip(_BLANKS)
    return _FIELD_SEP.split(line) if line else []


@dataclass(frozen=True)
class Event:
    """One column of a type's schema (``name,opt,opt``)."""

    name: str
    cumulative: bool = False  # E: a counter; rates come from deltas
    control: bool = False  # C: a programmed event selector, not data
    unit: str | None = None  # unit after the multiplier, e.g. "B" for U=512B
    multiplier: int = 1  # 512 for U=512B
    #: W=<bits>: counter width for roll-over; None where the schema declares
    #: none (the pipeline then applies the kernel's known width, else 64)
    width: int | None = None
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
                multiplier = parse_uint(mult[:20]) if mult else 1
                if not 1 <= multiplier <= MAX_MULTIPLIER:
                    raise ValueError(f"unit multiplier {mult[:20]} out of range in {spec[:80]!r}")
                kw["multiplier"] = multiplier
                kw["unit"] = unit or None
            elif opt.startswith("W="):
                width = parse_uint(opt[2:][:20])
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
        if self.width is not None:
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
        """``$uptime`` in seconds; None when absent or not a plain decimal."""
        value = self.properties.get("uptime")
        if value is None or not _EPOCH_RE.fullmatch(value):
            return None
        return float(value)

    @property
    def monitor_version(self) -> str | None:
        """The monitor's version: ``$tacc_stats`` (our monitor and older C
        monitors) or ``$hpcperfstats`` (the C monitor 2.3.5 as built today)."""
        props = self.properties
        return props.get("tacc_stats", props.get("hpcperfstats"))


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
                out.append(rest.strip(_BLANKS))
        return out

    @property
    def seq(self) -> int | None:
        """The monitor's per-host sequence number, when it wrote one."""
        for value in self.mark_values(MARK_SEQ):
            try:
                return parse_uint(value)
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


def read_raw(
    text: str | Iterable[str],
    source: str = "<text>",
    header: Header | None = None,
    first_line: int = 1,
) -> RawStats:
    r"""Parse raw stats text.

    ``header`` continues a file whose header was read earlier (a message
    without ``$`` lines is appended to its host's current archive file and
    uses that file's schemas). ``first_line`` numbers lines for issues.
    A text is cut into lines by :func:`split_lines`; an iterable gives one
    line per item (its ``\n`` or ``\r\n`` removed).
    """
    if isinstance(text, str):
        lines: Iterable[str] = split_lines(text)
        split, ascii_text = _splitter(text), text.isascii()
    else:
        lines = (strip_line_end(ln) for ln in text)
        split, ascii_text = _split_fields, False
    reader = _Reader(source, header, split, ascii_text)
    for lineno, line in enumerate(lines, start=first_line):
        reader.line(lineno, line)
    return reader.out


class _Reader:
    """State of one :func:`read_raw` pass: the line kinds of docs/raw-format.md."""

    def __init__(self, source: str, header: Header | None, split, ascii_text: bool) -> None:
        self.source = source
        self.split = split
        self.ascii = ascii_text  # the whole text is ASCII (str.isascii: O(1))
        self.out = RawStats()
        self.header = header
        self.in_header = False  # still reading $ ! @type lines of a header block
        self.sample: Sample | None = None
        self.tier: str | None = None
        self.lineno = 0

    def issue(self, reason: str, line: str) -> None:
        self.out.issues.append(ParseIssue(self.source, self.lineno, line, reason))

    def line(self, lineno: int, line: str) -> None:
        self.lineno = lineno
        first = line[:1]
        if len(line) > MAX_LINE:
            if first in _DIGITS:  # a record line, unread: its data lines have no sample
                self.in_header, self.sample = False, None
            self.issue(f"line of {len(line)} characters, over {MAX_LINE}",
                       line[:200] + "...")
            return
        if first == "#" or not line.strip(_BLANKS):
            return
        if "\x00" in line:
            self.issue("NUL byte in line", line.replace("\x00", "\\0"))
        elif first == "$":
            self.property(line)
        elif first == "!":
            self.schema(line)
        elif first == "@":
            self.at(line)
        elif first == "%":
            if self.sample is None:
                self.issue("mark line before any sample", line)
            else:
                self.sample.marks.append(line[1:].strip(_BLANKS))
        elif first in _DIGITS:
            self.record(line)
        else:
            self.data(line)

    def property(self, line: str) -> None:
        if not self.in_header:
            self.header = Header()
            self.out.headers.append(self.header)
            self.in_header = True
            self.sample = None
        key, _, value = line[1:].partition(" ")
        if not key:
            self.issue("empty header key", line)
            return
        value = value.strip(_BLANKS)
        if key == "uptime" and not _EPOCH_RE.fullmatch(value):
            self.issue("$uptime is not a plain decimal number", line)
            return
        self.header.properties[key] = value  # type: ignore[union-attr]

    def schema(self, line: str) -> None:
        if self.header is None or not self.in_header:
            self.issue("schema line outside a header", line)
            return
        type_, *specs = self.split(line[1:]) or [""]
        if not type_ or not specs:
            self.issue("schema line without events", line)
            return
        try:
            events = tuple(Event.parse(s) for s in specs)
        except ValueError as exc:
            self.issue(f"bad schema: {exc}", line)
            return
        if len({e.name for e in events}) != len(events):
            self.issue("duplicate event name in schema", line)
            return
        self.header.schemas[type_] = Schema(type_, events)

    def at(self, line: str) -> None:
        word, *rest = self.split(line[1:]) or [""]
        if not word:
            self.issue("device list without a type", line)
        elif word in ("fast", "full") and not rest:
            self.tier = word
            if self.sample is not None and not self.sample.rows:
                self.sample.tier = word
        elif self.header is None:
            self.issue("device list outside a header", line)
        else:
            self.header.devices[word] = rest

    def record(self, line: str) -> None:
        self.in_header = False
        self.sample = None
        parts = self.split(line)
        if len(parts) != 3:
            self.issue("record line needs '<epoch> <jobid> <host>'", line)
            return
        stamp = parse_epoch(parts[0])
        if stamp is None:
            self.issue("record line epoch is not a plain decimal number of seconds "
                       "up to 9999-12-31", line)
            return
        if not _HOST_RE.fullmatch(parts[2]) or not _JOBID_RE.fullmatch(parts[1]):
            self.issue("record line host or job id is malformed (host: up to 253 letters, "
                       "digits, '.', '-', '_'; job id: up to 128 printable ASCII)", line)
            return
        if self.header is None:
            self.issue("sample before any header", line)
            return
        self.sample = Sample(time=stamp, jobid=parts[1], host=parts[2], header=self.header,
                             tier=self.tier, line=self.lineno, time_text=parts[0])
        self.tier = None
        if self.header.first_time is None:
            self.header.first_time = stamp
        self.out.samples.append(self.sample)

    def data(self, line: str) -> None:
        sample = self.sample
        if sample is None:
            self.issue("data line outside a sample", line)
            return
        parts = self.split(line)
        if len(parts) < 3:
            self.issue("data line needs '<type> <device> <values>'", line)
            return
        type_, device, *values = parts
        schema = self.header.schemas.get(type_) if self.header else None
        if schema is None:
            self.issue(f"type {type_!r} has no schema", line)
            return
        expected = len(schema.fast_events()) if sample.tier == "fast" else len(schema.events)
        if len(values) != expected:
            self.issue(f"{type_} expects {expected} values, got {len(values)}", line)
            return
        try:
            nums = _values(values, self.ascii)
        except ValueError as exc:
            self.issue(f"bad value: {exc}", line)
            return
        devs = sample.rows.setdefault(type_, {})
        if device in devs:
            self.issue(f"duplicate device {device!r} for {type_} in one sample", line)
            return
        devs[device] = nums


def _values(values: list[str], ascii_text: bool) -> tuple[Number, ...]:
    """A data line's values, checked as a whole where that is enough.

    In ASCII text ``str.isdigit`` is ``[0-9]``: the common line of counters
    needs no regex, and under 300 digits no token can overflow a float.
    """
    digits = "".join(values)
    if ascii_text and digits.isdigit():
        return tuple(map(int if len(digits) <= 300 else _decimal, values))
    if _VALUES_RE.fullmatch(" ".join(values)):
        return tuple(map(_decimal, values))
    return tuple(map(parse_number, values))


def iter_header_lines(header: Header) -> Iterator[str]:
    for key, value in header.properties.items():
        yield f"${key} {value}".rstrip()
    for type_, schema in header.schemas.items():
        yield f"!{type_} " + " ".join(e.spec() for e in schema.events)
    for type_, devs in header.devices.items():
        yield f"@{type_} " + " ".join(devs)


def _format(value: Number) -> str:
    """A value as the grammar writes numbers: plain decimal, never ``1e-05``."""
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text and math.isfinite(value):
        text = format(Decimal(text), "f")  # the same shortest digits, positional
    return text


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


# --- device names that carry arbitrary bytes (the ``procexe`` type) ---------
#
# A device is one blank-free ASCII token, but an executable path may hold
# blanks, ``%``, control characters and bytes that are not UTF-8. Such a name
# is percent-encoded: every byte outside ``!``..``~`` (0x21-0x7E), and ``%``
# itself, becomes ``%XX`` (two upper-case hex digits). The token is then plain
# ASCII without blanks, so every reader, old or new, keeps it as one field.
_DEVICE_SAFE = frozenset(range(0x21, 0x7F)) - {0x25}
_HEX = "0123456789ABCDEF"


def encode_device(name: bytes) -> str:
    """``name`` (any bytes) as one device token: see the comment above."""
    return "".join(chr(b) if b in _DEVICE_SAFE else f"%{b >> 4:X}{b & 15:X}" for b in name)


def decode_device(token: str) -> bytes:
    """The bytes :func:`encode_device` encoded; ValueError on a token it cannot
    have written (a ``%`` without two hex digits, a character outside ASCII)."""
    out = bytearray()
    i = 0
    while i < len(token):
        char = token[i]
        if char == "%":
            pair = token[i + 1:i + 3]
            if len(pair) != 2 or any(c not in _HEX + "abcdef" for c in pair):
                raise ValueError(f"bad percent escape at {i} in {token[:200]!r}")
            out.append(int(pair, 16))
            i += 3
            continue
        if ord(char) not in _DEVICE_SAFE:
            raise ValueError(f"character {char!r} not allowed in an encoded device name")
        out.append(ord(char))
        i += 1
    return bytes(out)


#: ``procexe`` device: ``<pid>/<percent-encoded /proc/<pid>/exe>``
def procexe_device(pid: int, exe: bytes) -> str:
    return f"{pid}/{encode_device(exe)}"


def parse_procexe_device(device: str) -> tuple[int, bytes]:
    """``(pid, executable path bytes)`` of a ``procexe`` device; ValueError if malformed."""
    pid, sep, encoded = device.partition("/")
    if not sep or not pid.isascii() or not pid.isdigit():
        raise ValueError(f"procexe device needs '<pid>/<path>': {device[:200]!r}")
    return int(pid), decode_device(encoded)
