"""A drained message proven good at C speed, or left to the reference reader.

The drain must accept and quarantine exactly what the reference path
(``rawformat.read_raw`` and the drain's checks in ``MessageStore._validate``)
would, with the same reasons. Nearly every message is the monitor's plain
output: printable ASCII, a header block then samples, or samples alone. For
those, one compiled pattern per set of schemas checks every data line's type,
value count and numbers over the whole message in C; Python runs once per
sample (its epoch, host and repeated devices), never per line, and the header
block is read by ``textframe.parse_header`` (schema lines parsed once per
distinct block). Anything else (tabs, ``\\r``, non-ASCII, NUL, ``@fast``
tiers, a header in mid-message, a line the pattern does not take, a bad
epoch or host) gives None, and the reference path decides, with its reasons:
the fast path only ever says "good", never why not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from hpcperf_monitor.rawformat import MAX_LINE, Header, epoch_in_window, parse_epoch

from hpcperfstats.archive.store import Part
from hpcperfstats.hostdata.textframe import PLAIN_ASCII, parse_header

# a blank line (spaces only: no tabs get here) or a comment: the reader skips both
_SKIP = rb"(?: *+\n|#[^\n]*+\n)"
_LEAD = re.compile(_SKIP + rb"*+")
#: a header block: its ``$``, ``!``, ``@`` lines (each checked by ``parse_header``)
_HEAD = re.compile(rb"(?:[$!@][^\n]*+\n|" + _SKIP + rb")*+")
#: a value as ``rawformat.parse_number`` takes it; at most 299 digits before the
#: point, so always a finite float (a longer run is left to the reference)
_VALUE = rb"-?[0-9]{1,299}+(?:\.[0-9]{1,299}+)?+"
#: ``<epoch> <jobid> <host>``: rawformat's ``_EPOCH_RE``, ``_JOBID_RE``, ``_HOST_RE``
_RECORD = (rb"([0-9]++(?:\.[0-9]++)?+) ++[!-~]{1,128}+ ++"
           rb"([A-Za-z0-9][A-Za-z0-9_.-]{0,252}+) *+\n")
_RECORD_LINE = re.compile(_RECORD)
#: an ``@fast``/``@full`` tier mark (``rawformat._Reader.at``), a ``$hostname`` property
_TIER_LINE = re.compile(rb"^@ *+(?:fast|full) *+$", re.M)
_HOSTNAME_LINE = re.compile(rb"^\$hostname(?: |$)", re.M)
#: types whose data lines the reader dispatches as data lines (not ``#$!@%``, digits)
_TYPE = re.compile(r"[A-Za-z_][!-~]*")
#: (type, device) of each data line of a sample's body
_DEVICE = re.compile(rb"^([A-Za-z_][!-~]*+) ++([!-~]++)", re.M)
#: host names (and hosts' patterns) remembered by a drain at most (then forgotten)
_HOSTS_MAX = 100_000


@lru_cache(maxsize=256)
def _sample_pattern(shape: tuple[tuple[str, int], ...]) -> re.Pattern[bytes]:
    """One sample (record line, then marks, data lines, blanks, comments) under
    schemas of ``shape`` ((type, number of events) each): a data line must name
    a type of the header, a device, and exactly that many plain decimal values."""
    alts = [re.escape(t.encode()) + rb" ++[!-~]++(?: ++" + _VALUE + rb"){%d}+" % n
            for t, n in shape if _TYPE.fullmatch(t)]
    data = (rb"(?:" + b"|".join(alts) + rb") *+\n|") if alts else b""
    return re.compile(_RECORD + rb"((?:%[^\n]*+\n|" + data + _SKIP + rb")*+)")


def _pattern(header: Header) -> re.Pattern[bytes]:
    return _sample_pattern(tuple((t, len(s.events)) for t, s in header.schemas.items()))


class PlainReader:
    """The fast path of one drain: host names checked once each."""

    def __init__(self, host_folder: Callable[[str], str]):
        self._host_folder = host_folder
        self._hosts: dict[bytes | str, str | None] = {}
        #: pattern of each host's current header (the header object, kept to check identity)
        self._patterns: dict[str, tuple[Header, re.Pattern[bytes]]] = {}

    def _host(self, name: bytes | str) -> str | None:
        """``host_folder(name)``, or None where it refuses the name."""
        try:
            return self._hosts[name]
        except KeyError:
            pass
        if len(self._hosts) >= _HOSTS_MAX:
            self._hosts.clear()
        try:
            short = self._host_folder(name if isinstance(name, str) else name.decode())
        except ValueError:
            short = None
        self._hosts[name] = short
        return short

    def _host_pattern(self, host: str, header: Header) -> re.Pattern[bytes]:
        known = self._patterns.get(host)
        if known is not None and known[0] is header:
            return known[1]
        if len(self._patterns) >= _HOSTS_MAX:
            self._patterns.clear()
        pattern = _pattern(header)
        self._patterns[host] = (header, pattern)
        return pattern

    def parts(self, body: bytes, current_header: Callable[[str], Header | None],
              window: tuple[float, float, float]) -> tuple[str, list[Part]] | None:
        """``(host, [part])`` of a plain message the reference path would accept
        whole, as it would store it; None for anything else (it decides then).

        ``current_header(host)``: the header a message without one continues;
        ``window``: ``(received, earliest, max_ahead_s)`` for the epochs.
        """
        if len(body) > MAX_LINE or body.translate(None, PLAIN_ASCII):
            return None
        data = body if body.endswith(b"\n") else body + b"\n"
        pos = _LEAD.match(data).end()
        opens = data[pos:pos + 1] == b"$"
        header: Header | None = None
        if opens:
            head = _HEAD.match(data, pos)
            pos = head.end()
            block = head[0]
            if _TIER_LINE.search(block) or len(_HOSTNAME_LINE.findall(block)) > 1:
                return None
            lines = [ln for ln in block.decode().split("\n") if ln[:1] in ("$", "!", "@")]
            header = parse_header(lines)
            if header is None:
                return None
            name = header.hostname
            host = self._host(name) if name is not None else None
            if name is not None and host is None:
                return None
            pattern = _pattern(header)
            if host is not None:  # its next messages continue this header
                self._patterns[host] = (header, pattern)
        else:  # continues the host's file: its header decides the data lines
            m = _RECORD_LINE.match(data, pos)
            if m is None or (host := self._host(m[2])) is None:
                return None
            current = current_header(host)
            if current is None:
                return None
            pattern = self._host_pattern(host, current)
        starts: list[int] = []
        times: list[float] = []
        texts: list[str] = []
        size = len(data)
        while pos < size:
            m = pattern.match(data, pos)
            if m is None:
                return None
            text = m[1].decode()
            epoch = parse_epoch(text)
            if epoch is None or epoch_in_window(epoch, *window) is not None:
                return None
            if opens and host is None:  # a header without $hostname: its first sample names it
                host = self._host(m[2])
                if host is None:
                    return None
            elif self._host(m[2]) != host:
                return None
            devices = _DEVICE.findall(data, m.start(3), m.end(3))
            if len(set(devices)) != len(devices):
                return None
            starts.append(m.start())
            times.append(epoch)
            texts.append(text)
            pos = m.end()
        if not starts and (not opens or host is None):
            return None  # nothing naming a host, or a continuation without samples
        if header is not None:
            header.first_time = times[0] if times else None
        spans = tuple(zip(starts, starts[1:] + [size], strict=True)) if starts else ()
        return host, [Part(data, opens, header, tuple(times), tuple(texts),
                           starts[0] if starts else size, spans)]
