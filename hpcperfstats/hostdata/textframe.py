"""Raw stats text -> the long frame of :mod:`hpcperfstats.hostdata.frames`, vectorised.

The hot path of ``host_data``: every line is split, classified and cast in
polars (Rust), with no Python per line or per sample. Only header blocks (a
few lines per file) go through the reference reader. The fast path is
optimistic: a chunk with anything it does not handle exactly like
``rawformat.read_raw`` (bad lines, tabs, ``@fast`` tiers, NUL bytes...) is
read by the reference reader instead, so both paths give the same frame and
every issue is still reported with its line number.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import polars as pl
from hpcperf_monitor.rawformat import (
    EPOCH_MAX,
    MAX_LINE,
    Header,
    Schema,
    boot_time,
    read_raw,
)

from hpcperfstats.hostdata.frames import META, WidePart, long_of_parts, wide_parts
from hpcperfstats.jobs.accounting import short_host, short_host_expr

_SAMPLES = {"host": pl.Utf8, "time": pl.Float64, "boot": pl.Float64}
# a chunk with anything but printable ASCII goes to the reference reader (and
# one with runs of blanks or @fast tiers: _odd_line, checked per line in polars);
# anything but printable ASCII and "\n" (tabs, "\r", NUL, "\x0c", U+2028, "٨"...):
# there Python's and polars' notions of blanks, digits and case may differ
#: printable ASCII and "\n": the bytes the fast paths take (this one, the drain's plain.py)
PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\n"
# the grammar's numbers (docs/raw-format.md): polars' cast also takes 1e5, +1, .5, inf
_EPOCH_FIELD = r"^[0-9]+(\.[0-9]+)? "
# the record line's host and job id, as rawformat._HOST_RE and _JOBID_RE (text is ASCII here)
_HOST = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$"
_JOBID_MAX = 128
_NUM = r"-?[0-9]+(\.[0-9]+)?"
_VALUES = rf"^{_NUM}( {_NUM})*$"
_HUGE = r"[0-9]{300}"  # a number this long may be beyond a 64-bit float


@dataclass
class Chunk:
    """Raw text, and the header it continues (an archive slice has none of its own)."""

    text: str
    header: Header | None = None
    #: boot epoch of ``header`` (its file's first sample minus ``$uptime``)
    boot: float | None = None
    source: str = "<text>"


@dataclass
class ParsedChunks:
    #: the values, one :class:`WidePart` per type and event list (columns
    #: ``chunk`` and ``sample`` besides META); what ``rates.host_rows_of_parts`` takes
    parts: list[WidePart]
    samples_in: pl.DataFrame  # one row per sample read: host, time, boot
    issues: list  # ParseIssue of chunks read by the reference reader
    slow_chunks: int

    @cached_property
    def frame(self) -> pl.DataFrame:
        """Every value as a row (LONG_SCHEMA), made from ``parts`` when asked for."""
        return long_of_parts(self.parts)


@lru_cache(maxsize=1024)
def _schema_block(lines: tuple[str, ...]) -> tuple[dict, dict] | None:
    """Schemas and device lists of a header's ``!``/``@`` lines, parsed once:
    every node of a cluster repeats the same ones in every file."""
    raw = read_raw(["$_ _", *lines])
    if raw.issues or len(raw.headers) != 1:
        return None
    return raw.headers[0].schemas, raw.headers[0].devices


def parse_header(lines: list[str]) -> Header | None:
    """One header block (``$``, ``!``, ``@`` lines) as ``read_raw`` reads it."""
    props = [ln for ln in lines if ln.startswith("$")]
    rest = tuple(ln.rstrip("\r\n") for ln in lines if not ln.startswith("$"))
    cached = _schema_block(rest)
    head = read_raw(props)
    if cached is None or head.issues or len(head.headers) != 1 or not lines[0].startswith("$"):
        raw = read_raw(lines)  # unusual header: the reference decides
        return raw.headers[0] if len(raw.headers) == 1 and not raw.issues else None
    header = head.headers[0]
    header.schemas, header.devices = dict(cached[0]), dict(cached[1])
    return header


def _needs_reference(chunk: Chunk) -> bool:
    text = chunk.text
    return not _plain(text) or _has_giant_line(text)


def _plain(text: str) -> bool:
    r"""Printable ASCII and ``\n`` only (a C-speed scan: ~1 ms per MB)."""
    return text.isascii() and not text.encode("ascii").translate(None, PLAIN_ASCII)


def _has_giant_line(text: str) -> bool:
    """A line over ``MAX_LINE``: read_raw reports it unread, in its own bytes of
    memory; in polars every step over it would copy it again (~15x its size)."""
    return len(text) > MAX_LINE and max(map(len, text.split("\n"))) > MAX_LINE


def _odd_line() -> pl.Expr:
    """A line the fast path leaves to the reference reader: two blanks in a
    row, a blank at either end, an ``@fast`` tier mark (a superset of the
    text marks ``"  "``, ``"\\n "``, ``" \\n"``, ``"\\n@f"``)."""
    line = pl.col("line")
    return (line.str.contains("  ", literal=True) | line.str.starts_with(" ")
            | line.str.ends_with(" ") | line.str.starts_with("@f"))


def _lines(texts: list[str]) -> tuple[pl.DataFrame, set[int]]:
    """The chunks' lines (blank and ``#`` lines dropped), classified; and the
    chunks with an odd line, which the reference reader reads."""
    frame = pl.DataFrame({"text": texts}).with_row_index("chunk")
    frame = frame.select("chunk", pl.col("text").str.split("\n").alias("line")).explode("line")
    odd = set(frame.filter(_odd_line())["chunk"].to_list())
    frame = frame.filter(pl.col("line").str.len_bytes() > 0)
    first = pl.col("line").str.slice(0, 1)
    is_header = first.is_in(["$", "!", "@"])
    chunk_start = pl.col("chunk") != pl.col("chunk").shift(1, fill_value=-1)
    frame = frame.filter(first != "#").with_columns(
        first.alias("first_char"), is_header.alias("is_header"), chunk_start.alias("chunk_start")
    )
    # a header block starts where a header line follows a non-header line;
    # every chunk starts a block (the continued header, if it has no own)
    header = pl.col("is_header")
    opens = (header & ~header.shift(1, fill_value=False)) | pl.col("chunk_start")
    return frame.with_columns(opens.cum_sum().alias("block"), opens.alias("opens")), odd


def _headers(lines: pl.DataFrame, chunks: Sequence[Chunk]) -> tuple[dict, set[int]]:
    """Header of every block, and the chunks whose header blocks need the reference."""
    starts = lines.filter(pl.col("opens")).select("block", "chunk", "first_char", "is_header")
    bad = set(starts.filter(pl.col("is_header") & (pl.col("first_char") != "$"))["chunk"].to_list())
    headers: dict[int, Header | None] = {}
    for block, chunk, first_char, is_header in starts.iter_rows():
        if not is_header:
            headers[block] = chunks[chunk].header
            if chunks[chunk].header is None:
                bad.add(chunk)
        elif first_char != "$":
            bad.add(chunk)
    own = (lines.filter(pl.col("is_header")).group_by("block", maintain_order=True)
           .agg("chunk", "line"))
    for block, block_chunks, text in own.iter_rows():
        header = parse_header(text)
        if header is None:
            bad.add(block_chunks[0])
            continue
        headers[block] = header
    return headers, bad


def long_frame_of_chunks(chunks: Sequence[Chunk],
                         skip_types: frozenset[str] = frozenset()) -> ParsedChunks:
    """Every value of every sample (as wide parts, and as a long frame when
    asked for); duplicates dropped.

    A (host, time) sample read twice (a re-delivered message, a torn copy
    and a whole one) keeps the copy with the most values, of equals the
    first read, as :func:`frames.long_frame` does.
    """
    fast_ids = [i for i, c in enumerate(chunks) if not _needs_reference(c)]
    slow = {i for i in range(len(chunks)) if i not in set(fast_ids)}
    parts: list[WidePart] = []
    records: list[pl.DataFrame] = []
    if fast_ids:
        fast_chunks = [chunks[i] for i in fast_ids]
        fast_parts, rec, bad = _fast(fast_chunks, skip_types)
        if bad:
            slow.update(fast_ids[i] for i in bad)
            keep = pl.col("chunk").is_in(sorted(bad)).not_()
            fast_parts = [_with_frame(p, p.frame.filter(keep)) for p in fast_parts]
            rec = rec.filter(keep)
        renumber = pl.col("chunk").replace_strict(list(range(len(fast_ids))), fast_ids,
                                                  return_dtype=pl.Int64)
        parts.extend(_with_frame(p, p.frame.with_columns(renumber)) for p in fast_parts
                     if p.frame.height)
        records.append(rec.with_columns(renumber))
    issues = []
    for i in sorted(slow):
        header = copy.copy(chunks[i].header)  # read_raw sets first_time on it
        raw = read_raw(chunks[i].text, source=chunks[i].source, header=header)
        issues.extend(raw.issues)
        if header is not None and chunks[i].boot is not None:
            # a slice's first sample is not its file's: keep the file's boot
            header.first_time = chunks[i].boot + (header.uptime or 0)
        for p in wide_parts(raw.samples, skip_types):  # one copy per sample already
            parts.append(_with_frame(p, p.frame.with_columns(
                pl.lit(i, pl.Int64).alias("chunk"), pl.lit(-1, pl.Int64).alias("sample"))))
        records.append(pl.DataFrame(
            {"chunk": [i] * len(raw.samples), "sample": list(range(len(raw.samples))),
             "host": [short_host(s.host) for s in raw.samples],
             "time": [s.time for s in raw.samples],
             "boot": [boot_time(s.header) for s in raw.samples]},
            schema={"chunk": pl.Int64, "sample": pl.Int64, "host": pl.Utf8, "time": pl.Float64,
                    "boot": pl.Float64}))
    if not records:
        return ParsedChunks([], pl.DataFrame(schema=_SAMPLES), issues, 0)
    rec = pl.concat(records, how="vertical").sort("chunk", "sample")
    if rec.select(pl.struct("host", "time").is_duplicated().any()).item():
        parts = _best_copies(parts)
    samples_in = rec.unique(["host", "time"], maintain_order=True).select(list(_SAMPLES))
    return ParsedChunks(parts, samples_in, issues, len(slow))


def _with_frame(part: WidePart, frame: pl.DataFrame) -> WidePart:
    return WidePart(part.type, part.events, frame)


def _fast(chunks: Sequence[Chunk], skip: frozenset[str]
          ) -> tuple[list[WidePart], pl.DataFrame, set[int]]:
    lines, odd = _lines([c.text for c in chunks])
    headers, bad = _headers(lines, chunks)
    bad |= odd
    body = lines.filter(~pl.col("is_header"))
    is_rec = pl.col("first_char").str.contains(r"^[0-9]")
    body = body.with_columns(is_rec.alias("rec"))
    body = body.with_columns(
        pl.col("rec").cum_sum().alias("sample"),
        pl.when("rec").then("block").forward_fill().alias("record_block"),
    )
    # a mark or data line before its block's first record line is reported
    outside = pl.col("record_block").is_null() | (pl.col("record_block") != pl.col("block"))
    bad |= set(body.filter(~pl.col("rec") & outside)["chunk"].to_list())
    body = body.filter(pl.col("first_char") != "%")
    rec = body.filter("rec").select(
        "chunk", "sample", "block", "line", pl.col("line").str.split(" ").alias("fields")
    ).with_columns(
        pl.col("fields").list.get(0, null_on_oob=True).cast(pl.Float64, strict=False).alias("time"),
        pl.col("fields").list.get(1, null_on_oob=True).alias("jobid"),
        short_host_expr(pl.col("fields").list.get(2, null_on_oob=True)).alias("host"),
        ((pl.col("fields").list.len() != 3) | ~pl.col("line").str.contains(_EPOCH_FIELD)
         | ~pl.col("fields").list.get(2, null_on_oob=True).str.contains(_HOST).fill_null(False)
         | (pl.col("fields").list.get(1, null_on_oob=True).str.len_bytes() > _JOBID_MAX)
         .fill_null(True)).alias("bad"),
    )
    bad |= set(rec.filter(pl.col("bad") | pl.col("time").is_null()
                          | (pl.col("time") > EPOCH_MAX))["chunk"].to_list())
    rec = rec.drop("fields", "bad", "line")
    # boot epoch per block: the continued header's own, else first sample - uptime
    first_t = rec.group_by("block").agg(pl.col("time").first(), pl.col("chunk").first())
    boots = {}
    for block, t, chunk in first_t.iter_rows():
        h = headers.get(block)
        if h is None or t is None:  # no header, or a bad record line: chunk is bad
            continue
        given = chunks[chunk].boot if h is chunks[chunk].header else None
        up = h.uptime
        boots[block] = given if given is not None else (t - up if up is not None else None)
    rec = rec.with_columns(
        pl.col("block").replace_strict(list(boots), list(boots.values()), default=None,
                                       return_dtype=pl.Float64).alias("boot"),
        pl.when(pl.col("jobid") == "-").then(None).otherwise("jobid").alias("jobid"),
    )
    data = body.filter(~pl.col("rec"))
    parts = pl.col("line").str.splitn(" ", 3)
    data = data.select("chunk", "sample", "block", parts.alias("fields")).unnest("fields").rename(
        {"field_0": "type", "field_1": "device", "field_2": "rest"})
    bad |= set(data.filter(~pl.col("rest").str.contains(_VALUES).fill_null(False))
               ["chunk"].to_list())
    # a (sample, type, device) line twice; by a hash of the three (a collision
    # only sends a chunk to the reference reader, which decides exactly)
    key = pl.col("sample").hash(1) ^ pl.col("type").hash(2) ^ pl.col("device").hash(3)
    dup = data.select("chunk", key.is_duplicated().alias("d"))
    bad |= set(dup.filter("d")["chunk"].to_list())
    out = []
    for (type_,), group in data.partition_by("type", as_dict=True, maintain_order=True).items():
        by_schema: dict[Schema, list[int]] = {}
        for block in group["block"].unique().to_list():
            schema = headers.get(block) and headers[block].schemas.get(type_)
            if schema is None:  # no schema: the reference reader reports it
                bad |= set(group.filter(pl.col("block") == block)["chunk"].to_list())
                continue
            by_schema.setdefault(schema, []).append(block)
        for schema, blocks in by_schema.items():
            part = group.filter(pl.col("block").is_in(blocks)) if len(by_schema) > 1 else group
            if type_ in skip:  # not loaded, but its bad lines are reported all the same
                counted = pl.col("rest").str.count_matches(" ") + 1 == len(schema.events)
                bad |= set(part.filter(~counted)["chunk"].to_list())
                huge = part.filter(pl.col("rest").str.contains(_HUGE))  # may overflow a float
                bad |= _values(type_, schema, huge)[1] if huge.height else set()
                continue
            wide, wrong = _values(type_, schema, part)
            bad |= wrong
            out.append(wide)
    meta = rec.select("sample", "time", "host", "jobid", "boot")
    recs = rec.select(pl.col("chunk", "sample").cast(pl.Int64), "host", "time", "boot")
    parts = []
    for wide in out:
        frame = wide.frame.join(meta, on="sample", how="left")
        parts.append(_with_frame(wide, frame.select(
            *META, pl.col("chunk", "sample").cast(pl.Int64), *wide.columns)))
    return parts, recs, bad


def _best_copies(parts: list[WidePart]) -> list[WidePart]:
    """One copy of each (host, time) sample: the one with the most values, of
    equals the first read, as :func:`frames.long_frame` chooses. A copy is a
    (chunk, sample) pair (``sample`` -1: a chunk read_raw read, one copy per sample)."""
    key = ["host", "time", "chunk", "sample"]
    if not parts:
        return parts
    counts = pl.concat([p.frame.group_by(key).agg((pl.len() * len(p.events)).alias("len"))
                        for p in parts], how="vertical").group_by(key).agg(pl.col("len").sum())
    best = counts.sort(["len", "chunk", "sample"], descending=[True, False, False]).unique(
        ["host", "time"], keep="first").select(key)
    return [_with_frame(p, p.frame.join(best, on=key, how="semi", maintain_order="left"))
            for p in parts]


def _values(type_: str, schema: Schema, part: pl.DataFrame) -> tuple[WidePart, set[int]]:
    """One type's data lines as a wide part (chunk, sample, device, v0...), and
    the chunks with a line the reference reader must report."""
    events = schema.events
    keep = [i for i, e in enumerate(events) if not e.control]
    counted = (pl.col("rest").str.count_matches(" ", literal=True) + 1 == len(events)
               ).fill_null(False)
    ok = part.select(counted).to_series()
    wrong = set(part.filter(~ok)["chunk"].to_list())
    part = part.filter(ok)  # the chunks of the others go to the reference reader
    # every value of the type in one cast (not one list.get and cast per
    # event), then a (lines x events) matrix: a value that is no number is NaN
    flat = part.select(pl.col("rest").str.split(" ").explode().cast(pl.Float64, strict=False)
                       ).to_series().to_numpy()
    values = flat.reshape(part.height, len(events))
    wide = part.select("chunk", "sample", "device").with_columns(
        pl.Series(f"v{j}", values[:, i], dtype=pl.Float64) for j, i in enumerate(keep))
    if keep:
        unusable = ~np.isfinite(values[:, keep]).all(axis=1)
        wrong |= set(part.filter(pl.Series(unusable))["chunk"].to_list())
    return WidePart(type_, tuple(events[i] for i in keep), wide), wrong
