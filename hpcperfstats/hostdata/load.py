"""Build one window of ``host_data`` from the archive and load it.

Glue between the archive reader, the frame/rate logic and the loader; the
Dagster asset and the archive import command both call it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg

from hpcperfstats.archive.store import HostSamples, range_samples, read_chunks
from hpcperfstats.config import cluster_name
from hpcperfstats.db.load import append_host_data, delete_host_data, delete_host_rows_from
from hpcperfstats.hostdata.frames import WidePart
from hpcperfstats.hostdata.rates import epoch_utc, host_rows_of_parts, same_boot
from hpcperfstats.hostdata.textframe import long_frame_of_chunks
from hpcperfstats.hostdata.types import skipped_types
from hpcperfstats.ingest.chunks import chunk_max_bytes
from hpcperfstats.jobs.metrics import END_GRACE_S


@dataclass
class HostLoadResult:
    rows: int  # rows written (COPY)
    samples: int  # archived samples of the window (read now or loaded before)
    hosts: int  # hosts with samples in the window
    issues: int
    seconds: float
    samples_unloaded: int = 0
    rows_deleted: int = 0
    #: pieces the build was cut into (each at most HPCPERF_CHUNK_MAX_BYTES of raw text)
    pieces: int = 0
    hosts_appended: int = 0  # new samples after the host's last loaded one
    hosts_replaced: int = 0  # rebuilt: new host, late sample, or a full rebuild
    hosts_unchanged: int = 0  # nothing new in the archive: not read at all


#: hours' advisory lock class: two builds of one hour never interleave
_HOUR_LOCK = 4242017


def compute_window(archive_dir: Path, start: datetime, end: datetime,
                   lookback_s: float) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """host_data rows for start <= time < end; the (host, time) samples read; issues.

    The whole window at once, in memory (tools and benchmarks);
    :func:`build_host_data` works in bounded pieces instead.
    """
    t0, t1 = start.timestamp(), end.timestamp()
    skipped: list = []  # what the bounded reader left out (a sample over the chunk bound)
    parsed = long_frame_of_chunks(list(read_chunks(archive_dir, t0, t1, lookback_s, skipped)),
                                  skip_types=skipped_types())
    rows = host_rows_of_parts(parsed.parts, t0, t1, since=t0 - lookback_s)
    samples = parsed.samples_in.sort("host", "time").with_columns(
        series_start(parsed.samples_in.sort("host", "time")).alias("start"))
    in_window = samples.filter((pl.col("time") >= t0) & (pl.col("time") < t1))
    return rows, in_window, len(parsed.issues) + len(skipped)


def series_start(samples: pl.DataFrame) -> pl.Series:
    """Samples (sorted by host, time) that start their counters' series:
    a host's first sample read, or its first after a reboot."""
    prev_host = pl.col("host").shift(1)
    rebooted = ~same_boot(pl.col("boot"), pl.col("boot").shift(1))
    return samples.select(
        prev_host.is_null() | (prev_host != pl.col("host")) | rebooted
    ).to_series()


def _us(epoch: float) -> int:
    """Epoch seconds as integer microseconds, rounded as :func:`rates.epoch_utc` does."""
    return round(epoch * 1_000_000)


@dataclass(frozen=True)
class HostSlice:
    """One host's part of a piece: samples read from ``read_from`` (and the one
    before it, within the lookback) to ``end``; rows kept from ``keep_from_us``."""

    host: str
    read_from: float
    keep_from_us: int
    end: float
    bytes: int
    #: delete the host's rows from ``keep_from_us`` to the hour's end first
    replace: bool = False
    #: rows kept before this (epoch us); None: before ``end``
    keep_end_us: int | None = None
    #: read from after the hour's start: a counter series absent from the sample
    #: before ``read_from`` is read again from the hour's start, so its first
    #: rate is the one a full rebuild gives
    append: bool = False


@dataclass
class HourPlan:
    slices: list[HostSlice] = field(default_factory=list)
    #: hosts with rows in the hour but no sample in the archive any more
    gone: list[str] = field(default_factory=list)
    samples_loaded: int = 0  # samples not read again (already loaded)
    hosts: int = 0
    appended: int = 0
    replaced: int = 0
    unchanged: int = 0


def loaded_samples(conn: psycopg.Connection, start: datetime, end: datetime,
                   cluster: str) -> dict[str, tuple[int, int, int]]:
    """Per host, the samples of the window in ``host_data``: (how many, last, sum),
    times in epoch microseconds. Compared with the archive index, these say what
    is already loaded without any state beside the database and the archive."""
    cur = conn.execute(
        "SELECT host, count(*), max(us), sum(us) FROM (SELECT DISTINCT host, "
        "(extract(epoch FROM time) * 1000000)::bigint AS us FROM host_data "
        "WHERE cluster = %s AND time >= %s AND time < %s) s GROUP BY host",
        (cluster, start, end))
    return {h: (n, int(last), int(total)) for h, n, last, total in cur.fetchall()}


def plan_hour(conn: psycopg.Connection, archive_dir: Path, start: datetime, end: datetime,
              lookback_s: float, full: bool, max_bytes: int, cluster: str) -> HourPlan:
    """What to read and write for one hour, host by host, from the archive
    index and what the table holds (nothing is parsed here).

    Per host: nothing loaded (or ``full``): read the hour. The loaded samples
    are exactly the archive's samples up to the last loaded one: append the
    samples after it, rated against it (or nothing to do). Otherwise a late
    sample arrived (or the archive changed): the host's rows from the first
    sample that differs are replaced (earlier rows cannot change: a row
    depends on its sample and the ones before it only).
    """
    t0, t1 = start.timestamp(), end.timestamp()
    loaded = {} if full else loaded_samples(conn, start, end, cluster)
    plan = HourPlan()
    late: list[tuple[HostSamples, list[tuple[int, int]]]] = []
    for found in range_samples(archive_dir, t0, t1, lookback_s):
        n, last, total = loaded.pop(found.host, (0, None, 0))
        times = [(_us(t), b) for t, b in found.samples]
        if not times and not found.unindexed_bytes and not n:
            continue
        plan.hosts += bool(times or found.unindexed_bytes)
        if found.unindexed_bytes or full or not n:
            plan.replaced += 1
            read = found.before_bytes + found.unindexed_bytes + sum(b for _, b in times)
            base = HostSlice(found.host, t0, _us(t0), t1, read, replace=bool(n))
            if found.unindexed_bytes:  # sizes per sample unknown: read whole
                plan.slices.append(base)
            else:
                plan.slices.extend(_split(base, times, found.before_bytes, max_bytes))
            continue
        done = sorted({t for t, _ in times if t <= last})
        if len(done) != n or sum(done) != total:
            late.append((found, times))
            continue
        plan.samples_loaded += n
        new = [(t, b) for t, b in times if t > last]
        if not new:
            plan.unchanged += 1
            continue
        plan.appended += 1
        plan.slices.extend(_from_sample(found.host, times, new[0][0], t1, max_bytes))
    if late:
        have = loaded_times(conn, start, end, [f.host for f, _ in late], cluster)
        for found, times in late:
            differ = {t for t, _ in times} ^ have.get(found.host, set())
            first = min(differ, default=_us(t0))
            plan.samples_loaded += sum(1 for t, _ in times if t < first)
            plan.replaced += 1
            plan.slices.extend(_from_sample(found.host, times, first, t1, max_bytes,
                                            replace=True))
    plan.gone = sorted(loaded)
    return plan


def _from_sample(host: str, times: list[tuple[int, int]], first: int, end: float,
                 max_bytes: int, replace: bool = False) -> list[HostSlice]:
    """A host's slice from its sample ``first`` (epoch us) on, rated against
    the sample before it; ``replace``: its rows from ``first`` on go first."""
    before = max(((t, b) for t, b in times if t < first), default=(None, 0))[1]
    part = [(t, b) for t, b in times if t >= first]
    # read from just before ``first``: the float epoch of a sample and its
    # rounded microseconds may differ by a fraction of one
    base = HostSlice(host, (first - 1) / 1e6, first, end, before + sum(b for _, b in part),
                     replace=replace, append=True)
    return _split(base, part, before, max_bytes)


def loaded_times(conn: psycopg.Connection, start: datetime, end: datetime,
                 hosts: list[str], cluster: str) -> dict[str, set[int]]:
    """The loaded sample times (epoch us) of ``hosts`` in the window."""
    cur = conn.execute(
        "SELECT host, array_agg(DISTINCT (extract(epoch FROM time) * 1000000)::bigint) "
        "FROM host_data WHERE cluster = %s AND time >= %s AND time < %s AND host = ANY(%s) "
        "GROUP BY host", (cluster, start, end, hosts))
    return {h: set(ts) for h, ts in cur.fetchall()}


def _split(base: HostSlice, times: list[tuple[int, int]], before: int,
           max_bytes: int) -> list[HostSlice]:
    """A host's slice cut by time so each part reads at most ``max_bytes``
    (one sample, if bigger, alone). A later part is rated against the sample
    before it, as the hour's first sample is against the previous hour's."""
    if base.bytes <= max_bytes or len(times) < 2:
        return [base]
    parts: list[list[tuple[int, int]]] = [[]]
    size = before
    for t, b in times:
        if parts[-1] and size + b > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append((t, b))
        size += b
    out = []
    for k, part in enumerate(parts):
        # cut at the next part's first sample (its float epoch and rounded
        # microseconds may differ by a fraction of one: read a little past)
        cut = parts[k + 1][0][0] if k + 1 < len(parts) else None
        end = base.end if cut is None else (cut + 1) / 1e6
        size = sum(b for _, b in part)
        if k == 0:
            out.append(replace(base, end=end, bytes=before + size, keep_end_us=cut))
        else:
            out.append(HostSlice(base.host, (part[0][0] - 1) / 1e6, part[0][0], end,
                                 size, keep_end_us=cut))
    return out


def pieces(slices: list[HostSlice], max_bytes: int) -> Iterator[list[HostSlice]]:
    """Slices packed into pieces of at most ``max_bytes`` of raw text to read
    (a slice bigger than that alone), never two of one host in a piece."""
    piece: list[HostSlice] = []
    size = 0
    for s in slices:
        if piece and (size + s.bytes > max_bytes or s.host == piece[-1].host):
            yield piece
            piece, size = [], 0
        piece.append(s)
        size += s.bytes
    if piece:
        yield piece


@dataclass
class PieceRows:
    rows: pl.DataFrame
    samples: int  # samples read whose rows are kept
    unloaded: int  # of those, samples with no row that do not start a series
    issues: int


def piece_rows(archive_dir: Path, slices: list[HostSlice], lookback_s: float,
               hour_start: float) -> PieceRows:
    """host_data rows of one piece: each slice's rows from ``keep_from_us`` to its end.

    An appended host whose read shows a counter series that the last loaded
    sample lacks is read again from the hour's start (the full rebuild would
    rate it against an earlier sample), so appending never changes a rate.
    """
    first = _piece_rows(archive_dir, slices, lookback_s)
    redo = first["redo"]
    if not redo:
        return PieceRows(first["rows"], first["samples"], first["unloaded"], first["issues"])
    again = _piece_rows(archive_dir, [replace(s, read_from=hour_start, append=False)
                                      for s in slices if s.host in redo], lookback_s)
    return PieceRows(
        rows=pl.concat([first["rows"].filter(~pl.col("host").is_in(list(redo))),
                        again["rows"]]),
        samples=first["samples"] - first["redo_samples"] + again["samples"],
        unloaded=first["unloaded"] - first["redo_unloaded"] + again["unloaded"],
        issues=first["issues"] + again["issues"],
    )


def _piece_rows(archive_dir: Path, slices: list[HostSlice], lookback_s: float) -> dict:
    skipped: list = []
    chunks = [c for s in slices for c in read_chunks(archive_dir, s.read_from, s.end,
                                                      lookback_s, skipped, hosts=[s.host])]
    parsed = long_frame_of_chunks(chunks, skip_types=skipped_types())
    del chunks
    bounds = pl.DataFrame(
        {"host": [s.host for s in slices], "_lo": [s.read_from - lookback_s for s in slices],
         "_from": [s.read_from for s in slices], "_end": [s.end for s in slices],
         "_keep": [s.keep_from_us for s in slices],
         "_end_us": [_us(s.end) if s.keep_end_us is None else s.keep_end_us for s in slices],
         "_append": [s.append for s in slices]},
        schema={"host": pl.Utf8, "_lo": pl.Float64, "_from": pl.Float64, "_end": pl.Float64,
                "_keep": pl.Int64, "_end_us": pl.Int64, "_append": pl.Boolean})
    # each host's values from its slice's lookback to its end, on the wide parts
    # (a piece never holds two slices of one host: one bound per host)
    window = bounds.select("host", "_lo", "_end")
    in_slice = (pl.col("time") >= pl.col("_lo")) & (pl.col("time") < pl.col("_end"))
    parts = [WidePart(p.type, p.events, p.frame.join(window, on="host").filter(in_slice)
                      .drop("_lo", "_end")) for p in parsed.parts]
    parsed.parts = []  # the one copy of the values held from here
    appends = bounds.filter("_append").select("host", "_from")
    redo = _fresh_series_hosts(parts, appends) if appends.height else set()
    rows = host_rows_of_parts(parts)
    del parts
    keep = (pl.col("_us") >= pl.col("_keep")) & (pl.col("_us") < pl.col("_end_us"))
    rows = rows.join(bounds.select("host", "_keep", "_end_us"), on="host").with_columns(
        pl.col("time").dt.epoch("us").alias("_us")).filter(keep).drop(
        "_keep", "_end_us", "_us")
    samples = parsed.samples_in.sort("host", "time")
    samples = samples.with_columns(series_start(samples).alias("start"),
                                   epoch_utc(pl.col("time")).dt.epoch("us").alias("_us"))
    samples = samples.join(bounds.select("host", "_keep", "_end_us"), on="host").filter(keep)
    unloaded = unloaded_samples(samples.filter(~pl.col("start")), rows)
    redone = pl.col("host").is_in(list(redo))
    return {"rows": rows, "samples": samples.height, "unloaded": unloaded.height,
            "issues": len(parsed.issues) + len(skipped), "redo": redo,
            "redo_samples": samples.filter(redone).height,
            "redo_unloaded": unloaded.filter(redone).height}


def _fresh_series_hosts(parts: list[WidePart], appends: pl.DataFrame) -> set[str]:
    """Appended hosts (``appends``: host, ``_from``) with a counter series
    (type, device, event) first read at or after ``_from``: one the last
    loaded sample lacks. A series exists in every row of its part, read or
    not, as in the long frame."""
    firsts = []
    for p in parts:
        counters = [e.name for e in p.events if e.cumulative]
        if not counters or not p.frame.height:
            continue
        first = p.frame.join(appends, on="host", how="semi").group_by("host", "device").agg(
            pl.col("time").min())
        firsts.append(first.with_columns(pl.lit(p.type).alias("type"),
                                         pl.lit(counters).alias("event")).explode("event"))
    if not firsts:
        return set()
    fresh = (pl.concat(firsts, how="vertical")
             .group_by("host", "type", "device", "event").agg(pl.col("time").min())
             .join(appends, on="host").filter(pl.col("time") >= pl.col("_from")))
    return set(fresh["host"].to_list())


def hours(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at whole UTC hours: the unit of a build's transaction."""
    out, t = [], start
    while t < end:
        nxt = min(end, (t + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))
        out.append((t, nxt))
        t = nxt
    return out


def build_host_data(conn: psycopg.Connection, archive_dir: Path, start: datetime,
                    end: datetime, lookback_s: float, *, full: bool = False,
                    max_bytes: int | None = None, cluster: str | None = None
                    ) -> HostLoadResult:
    """Load ``host_data`` of ``cluster`` (default: the configured one) for
    start <= time < end from the archive, hour by hour.

    Memory is bounded by ``max_bytes`` (default ``HPCPERF_CHUNK_MAX_BYTES``)
    of raw text per piece, whatever the hosts and hours: each hour is cut
    into pieces of hosts (and of time, for a host bigger than that), each
    parsed, rated and streamed to COPY before the next is read. By default
    only what changed is written (see :func:`plan_hour`); ``full`` replaces
    every row of the range (a backfill after a rate-rule change). Each hour
    is one transaction, under an advisory lock of its own.
    """
    started = time.monotonic()
    limit = max_bytes or chunk_max_bytes()
    cluster = cluster_name(cluster)
    res = HostLoadResult(rows=0, samples=0, hosts=0, issues=0, seconds=0.0)
    for h0, h1 in hours(start, end):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                        (_HOUR_LOCK, int(h0.timestamp() // 3600)))
            if full:
                res.rows_deleted += delete_host_data(cur, h0, h1, cluster=cluster)
            plan = plan_hour(conn, archive_dir, h0, h1, lookback_s, full, limit, cluster)
            res.rows_deleted += delete_host_data(cur, h0, h1, plan.gone, cluster=cluster)
            for piece in pieces(plan.slices, limit):
                got = piece_rows(archive_dir, piece, lookback_s, h0.timestamp())
                redo = [(s.host, s.keep_from_us) for s in piece if s.replace]
                res.rows_deleted += delete_host_rows_from(cur, redo, h1, cluster=cluster)
                res.rows += append_host_data(cur, got.rows, h0, h1, cluster=cluster)
                res.samples += got.samples
                res.samples_unloaded += got.unloaded
                res.issues += got.issues
                res.pieces += 1
            res.samples += plan.samples_loaded
            res.hosts += plan.hosts
            res.hosts_appended += plan.appended
            res.hosts_replaced += plan.replaced
            res.hosts_unchanged += plan.unchanged
    res.seconds = time.monotonic() - started
    return res


def unloaded_samples(samples: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Archived (host, time) samples of the window with no host_data row.

    Every sample yields at least its gauge rows, and a counter-only sample
    its rates unless it starts a series (first sample of a node, after a
    reboot): those are allowed for by the caller's check.
    """
    times = samples.select("host", epoch_utc(pl.col("time")).alias("time"))
    loaded = rows.select("host", "time").unique()
    return times.join(loaded, on=["host", "time"], how="anti")


def window_checks(conn: psycopg.Connection, start: datetime, end: datetime,
                  cluster: str | None = None) -> tuple[int, int]:
    """(negative rates, duplicate keys) among the window's host_data rows (a rate's
    unit ends in ``/s``)."""
    return conn.execute(
        "SELECT count(*) FILTER (WHERE value < 0 AND unit LIKE '%%/s'), "
        "count(*) - count(DISTINCT (host, time, type, device, event)) "
        "FROM host_data WHERE cluster = %s AND time >= %s AND time < %s",
        (cluster_name(cluster), start, end),
    ).fetchone()


def job_days_touched(conn: psycopg.Connection, start: datetime, end: datetime,
                     cluster: str | None = None) -> set[str]:
    """Days (by job end, UTC) of the jobs whose run overlaps the window."""
    cur = conn.execute(
        "SELECT DISTINCT to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM job_data "
        "WHERE cluster = %s AND start_time < %s AND end_time + make_interval(secs => %s) >= %s",
        (cluster_name(cluster), end, END_GRACE_S, start),
    )
    return {row[0] for row in cur.fetchall()}
