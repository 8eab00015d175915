"""TimescaleDB on the embedded server, and the plain path where it is not loaded.

``scripts/setup`` builds TimescaleDB into the embedded PostgreSQL where its
source is at hand (``scripts/timescaledb``); CI always has it, so there a
missing extension is a failure, not a skip.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest

from hpcperfstats.db import embedded
from hpcperfstats.db.load import HOST_DATA_COLUMNS, replace_host_data
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ports import free_port

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 18, 10, tzinfo=UTC)
C = "ts1"  # the cluster these rows belong to


def _need_timescale() -> None:
    if embedded.timescale_installed():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI runs on TimescaleDB: scripts/setup should have built it")
    pytest.skip("TimescaleDB is not built into the embedded server (scripts/timescaledb)")


def _rows(hour: datetime, hosts: int, extra_value: float = 0.0) -> pl.DataFrame:
    """Per-host cpu rows every 5 minutes of one hour, values worked out from their place."""
    records = []
    for h in range(hosts):
        for step in range(12):
            t = hour + timedelta(minutes=5 * step)
            records.append((t, f"c{h:03d}", "7", "cpu", "", "user", "cs",
                            h + step / 100 + extra_value, 300.0 * (h + 1)))
    return pl.DataFrame(records, schema={
        "time": pl.Datetime("us", "UTC"), "host": pl.Utf8, "jobid": pl.Utf8, "type": pl.Utf8,
        "device": pl.Utf8, "event": pl.Utf8, "unit": pl.Utf8, "value": pl.Float64,
        "delta": pl.Float64}, orient="row")


def _table(conn: psycopg.Connection) -> list[tuple]:
    cols = ", ".join(HOST_DATA_COLUMNS)
    return conn.execute(f"SELECT {cols} FROM host_data ORDER BY host, time, type, device, event"
                        ).fetchall()


def test_host_data_is_a_compressed_hypertable(pg_url):
    _need_timescale()
    with psycopg.connect(pg_url) as conn:
        assert ensure_schema(conn)["timescale"] is True
        row = conn.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'host_data'").fetchone()
    assert row == (True,)


def test_rebuilding_an_hour_in_a_compressed_chunk_gives_the_rows_of_an_uncompressed_one(pg_url):
    """A late sample rebuilds its hour: the result must not depend on compression."""
    _need_timescale()
    hour1, hour2 = T0, T0 + timedelta(hours=1)
    late = pl.concat([_rows(hour1, 4), _rows(hour1, 1, extra_value=0.5).with_columns(
        pl.lit("c100").alias("host"))])
    results = []
    for compress in (False, True):
        with psycopg.connect(pg_url) as conn:
            conn.execute("TRUNCATE host_data")
            replace_host_data(conn, _rows(hour1, 4), hour1, hour2, cluster=C)
            replace_host_data(conn, _rows(hour2, 4), hour2, hour2 + timedelta(hours=1), cluster=C)
            if compress:
                conn.execute("SELECT compress_chunk(c) FROM show_chunks('host_data') c")
                conn.commit()
                (compressed,) = conn.execute(
                    "SELECT count(*) FROM timescaledb_information.chunks "
                    "WHERE hypertable_name = 'host_data' AND is_compressed").fetchone()
                assert compressed >= 1
                # the cap on rows decompressed per transaction (100,000 by default) is
                # far below a production chunk's; here it is below this one's
                conn.execute("SET timescaledb.max_tuples_decompressed_per_dml_transaction = 10")
            replace_host_data(conn, late, hour1, hour2, cluster=C)
            results.append(_table(conn))
    plain, compressed = results
    assert plain == compressed
    # 4 hosts x 12 samples x 2 hours, plus the late host's 12 samples in hour 1
    assert len(plain) == 4 * 12 * 2 + 12
    assert ("c100" in {r[1] for r in compressed})


def test_installed_but_not_preloaded_falls_back_to_plain_tables(tmp_path, caplog):
    """A server that has the extension but did not preload it never aborts a start."""
    _need_timescale()
    pgdata = tmp_path / "pgdata"
    url = embedded.start(pgdata, free_port(), timescale=False)
    try:
        with psycopg.connect(url) as conn, caplog.at_level(logging.WARNING):
            assert ensure_schema(conn)["timescale"] is False
            (hyper,) = conn.execute(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            replace_host_data(conn, _rows(T0, 2), T0, T0 + timedelta(hours=1), cluster=C)
            assert len(_table(conn)) == 24
        assert hyper == 0
        assert "not in shared_preload_libraries" in caplog.text
    finally:
        embedded.stop(pgdata)


def test_moving_a_plain_installation_to_timescaledb_keeps_every_row(tmp_path):
    """The documented move: preload the extension, restart, ``hpcperf db migrate``."""
    _need_timescale()
    import subprocess
    import sys

    pgdata, port = tmp_path / "pgdata", free_port()
    url = embedded.start(pgdata, port, timescale=False)
    try:
        with psycopg.connect(url) as conn:
            assert ensure_schema(conn)["timescale"] is False
            for i in range(3):
                hour = T0 + timedelta(hours=i)
                replace_host_data(conn, _rows(hour, 5), hour, hour + timedelta(hours=1), cluster=C)
            before = _table(conn)
        embedded.stop(pgdata)
        embedded.start(pgdata, port, timescale=True)
        env = dict(os.environ, HPCPERF_DATABASE_URL=url)
        out = subprocess.run([sys.executable, "-m", "hpcperfstats.cli", "db", "migrate"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "timescaledb: True" in out.stdout
        with psycopg.connect(url) as conn:
            (hyper,) = conn.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables "
                "WHERE hypertable_name = 'host_data'").fetchone()
            assert hyper == 1
            assert _table(conn) == before
        assert len(before) == 3 * 5 * 12
    finally:
        embedded.stop(pgdata)


def test_a_compressed_hypertable_of_version_4_gets_the_cluster_key(pg_server, monkeypatch):
    """Migration 5 on TimescaleDB: compressed chunks are opened, every row gets the
    configured cluster, and compression comes back segmented by cluster and host."""
    _need_timescale()
    from hpcperfstats.db.schema import MIGRATIONS, VERSION_TABLE

    monkeypatch.setenv("HPCPERF_CLUSTER", "frontera")
    name = "timescale_v4"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url) as conn:
            # what a version-4 installation on TimescaleDB had: segmented by host alone
            conn.execute(VERSION_TABLE)
            for m in MIGRATIONS[:4]:
                conn.execute(m.sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (m.version,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("SELECT create_hypertable('host_data', 'time', "
                         "chunk_time_interval => interval '1 hour', migrate_data => TRUE)")
            conn.execute("ALTER TABLE host_data SET (timescaledb.compress, "
                         "timescaledb.compress_segmentby = 'host', "
                         "timescaledb.compress_orderby = 'type, device, event, time')")
            rows = _rows(T0, 3)
            with conn.cursor() as cur:
                with cur.copy("COPY host_data (time, host, jobid, type, device, event, unit,"
                              " value, delta) FROM STDIN") as copy:
                    for row in rows.iter_rows():
                        copy.write_row(row)
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('host_data') c")
            conn.commit()

            # 5 re-keys the compressed hypertable; 6 and 7 add their own tables
            assert ensure_schema(conn)["applied"] == [m.version for m in MIGRATIONS[4:]]

            got = conn.execute("SELECT cluster, count(*), sum(value) FROM host_data "
                               "GROUP BY 1").fetchall()
            assert got == [("frontera", 36, pytest.approx(rows["value"].sum()))]
            segments = conn.execute(
                "SELECT attname FROM timescaledb_information.compression_settings "
                "WHERE hypertable_name = 'host_data' AND segmentby_column_index IS NOT NULL "
                "ORDER BY segmentby_column_index").fetchall()
            assert segments == [("cluster",), ("host",)]
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('host_data') c")
            assert conn.execute("SELECT count(*) FROM host_data").fetchone() == (36,)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
