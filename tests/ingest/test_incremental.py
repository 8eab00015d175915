"""Issue 17 item 2: a build writes only what changed, and ends where a full rebuild ends.

"Already loaded" is decided per host from the table (count, last and sum of
the loaded sample times) against the archive index: samples after the last
loaded one are appended, a late one replaces its host's rows from its own
time on, an unchanged
host is not even read. ``full=True`` (the asset's ``hpcperf/rebuild=full``
tag) replaces everything.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcperfstats.db.tables import HOST_DATA
from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import store_messages

from .conftest import HOUR, START, demo_bodies, reference_rows
from .hostile import E, header

COLS = ", ".join(HOST_DATA.copy_columns)


def table(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(f"SELECT {COLS} FROM host_data ORDER BY host, time, type, device, "
                        "event").fetchall()


def store(dirs: dict[str, Path], bodies: list[bytes]) -> None:
    res = store_messages(bodies, dirs["archive"], dirs["quarantine"])
    assert res.quarantined == 0


def build(conn: psycopg.Connection, dirs: dict[str, Path], full: bool = False):
    return build_host_data(conn, dirs["archive"], START, START + HOUR, 3600, full=full)


@pytest.mark.integration
def test_an_hour_drained_in_twelve_pieces_is_written_once(dirs, pg_url):
    bodies = demo_bodies(nodes=3, hours=1)  # 3 hosts x 12 samples, in time order
    written, results = 0, []
    with psycopg.connect(pg_url) as conn:
        for k in range(12):  # each drain brings one sample per host, then a build
            store(dirs, bodies[3 * k:3 * k + 3])
            results.append(build(conn, dirs))
            written += results[-1].rows
        kept = table(conn)
    assert len(kept) == reference_rows(bodies, START, START + HOUR).height
    assert written == len(kept)  # rows written / rows kept = 1
    assert [r.rows_deleted for r in results] == [0] * 12
    # the first build reads the new hosts; then each host only appends
    assert (results[0].hosts_replaced, results[0].hosts_appended) == (3, 0)
    assert all((r.hosts_appended, r.hosts_replaced) == (3, 0) for r in results[1:])
    # each build reads 2 samples per host: the last loaded one and the new one
    assert all(r.samples == 3 * (k + 1) for k, r in enumerate(results))


@pytest.mark.integration
def test_nothing_new_writes_nothing_and_a_late_sample_rewrites_its_host_from_its_time(
        dirs, pg_url):
    bodies = demo_bodies(nodes=2, hours=1)  # hosts alternate: even index c001, odd c002
    late = bodies[9]  # the second host's 12:20 sample, held back
    epoch, _, host = late.decode().split("\n", 1)[0].split()
    at = datetime.fromtimestamp(float(epoch), UTC)
    store(dirs, [b for b in bodies if b is not late])
    with psycopg.connect(pg_url) as conn:
        first = build(conn, dirs)
        again = build(conn, dirs)
        assert (again.rows, again.rows_deleted, again.pieces, again.hosts_unchanged) == (
            0, 0, 0, 2)
        assert again.samples == first.samples == 23
        before = [r for r in table(conn) if r[1] == host and r[0] >= at]
        store(dirs, [late])
        fixed = build(conn, dirs)
        rows = table(conn)
    assert (fixed.hosts_replaced, fixed.hosts_unchanged, fixed.samples) == (1, 1, 24)
    # only the late sample's host is rewritten, from the late sample on (the rows
    # before it cannot change): its next sample's rates now span 5 minutes, not 10
    assert fixed.rows_deleted == len(before)
    assert fixed.rows == len([r for r in rows if r[1] == host and r[0] >= at]) > len(before)
    assert len(rows) == reference_rows(bodies, START, START + HOUR).height


@pytest.mark.integration
def test_full_rebuild_replaces_every_row(dirs, pg_url):
    store(dirs, demo_bodies(nodes=2, hours=1))
    with psycopg.connect(pg_url) as conn:
        build(conn, dirs)
        right = table(conn)
        # a row changed under the build (a rate rule fixed since, say)
        conn.execute("UPDATE host_data SET value = -1 WHERE type = 'cpu'")
        conn.commit()
        quiet = build(conn, dirs)  # incremental: nothing new, nothing rewritten
        assert quiet.rows == 0 and table(conn) != right
        full = build(conn, dirs, full=True)
        assert table(conn) == right
    assert full.rows == full.rows_deleted == len(right)
    assert full.hosts_replaced == 2 and full.hosts_appended == 0


def _sample(t: int, k: int, cpu1: bool) -> str:
    """Host n1's sample k (cpu 1 absent where the monitor could not read it)."""
    line1 = f"cpu 1 {1000 + 40 * k} {500 + 20 * k} {9000 + 30 * k}\n" if cpu1 else ""
    return (f"{t} - n1\ncpu 0 {1000 + 50 * k} {500 + 25 * k} {9000 + 25 * k}\n{line1}"
            f"mem 0 {2000 + k} 8000\n")


@st.composite
def arrivals(draw) -> tuple[list[bytes], list[list[bytes]]]:
    """The hour's samples of one host (some lacking a counter), arriving in any
    order and in any grouping after the header message (a sample at 11:59)."""
    n = draw(st.integers(min_value=2, max_value=8))
    absent = draw(st.sets(st.integers(min_value=0, max_value=n - 1), max_size=n))
    first = (header("n1") + _sample(E - 60, 0, True)).encode()
    samples = [_sample(E + 300 * k, k + 1, k not in absent).encode() for k in range(n)]
    # in time order (appends) as often as not, else shuffled (late samples)
    order = draw(st.one_of(st.just(samples), st.permutations(samples)))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=n - 1), max_size=n)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    return [first, *samples], [[first], *batches]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=arrivals())
@pytest.mark.integration
def test_any_arrival_order_ends_with_the_rows_of_a_full_rebuild(pg_url, case):
    bodies, batches = case
    root = Path(tempfile.mkdtemp(prefix="hpcperf-incr-"))
    dirs = {k: root / k for k in ("archive", "quarantine", "state")}
    try:
        with psycopg.connect(pg_url) as conn:
            conn.execute("TRUNCATE host_data")
            conn.commit()
            for batch in batches:
                store(dirs, batch)
                build(conn, dirs)
            incremental = table(conn)
            full = build(conn, dirs, full=True)
            assert table(conn) == incremental
        expected = reference_rows(bodies, START, START + HOUR)
        assert len(incremental) == expected.height == full.rows
        # the hour's first sample is rated against 11:59, the previous hour's
        assert expected.filter(pl.col("type") == "cpu")["time"].min() == START
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.integration
def test_the_asset_rebuilds_in_full_only_when_the_run_is_tagged(hpcperf_env, pg_url):
    from hpcperf_assets.host_data import REBUILD_TAG

    from hpcperf_dagster.definitions import defs

    store({k: hpcperf_env / k for k in ("archive", "quarantine", "state")},
          demo_bodies(nodes=2, hours=1))
    job = defs.resolve_job_def("host_data_job")

    def run(**tags: str) -> dict:
        result = job.execute_in_process(partition_key="2026-11-20-12:00", tags=tags)
        assert result.success
        meta = result.asset_materializations_for_node("host_data")[0].metadata
        return {k: v.value for k, v in meta.items()}

    first, quiet, full = run(), run(), run(**{REBUILD_TAG: "full"})
    assert (first["full_rebuild"], first["rows_deleted"], first["hosts_replaced"]) == (
        False, 0, 2)
    assert (quiet["rows"], quiet["rows_deleted"], quiet["hosts_unchanged"]) == (0, 0, 2)
    assert full["full_rebuild"] and full["rows"] == full["rows_deleted"] == first["rows"] > 0
