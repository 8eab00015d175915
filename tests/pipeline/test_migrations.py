"""Numbered migrations: the previous release's database, with data, upgrades in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hpcperf_dagster.resources import Database
from hpcperfstats.db.schema import (
    CLUSTER_KEYS,
    MIGRATIONS,
    SCHEMA_VERSION,
    ensure_schema,
    recorded_version,
    schema_is_current,
)
from hpcperfstats.db.tables import TABLES

#: the tables exactly as commit cbdad92 (the release before the column additions) made them
RELEASE_SQL = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "release-cbdad92.sql"


@pytest.fixture
def fresh_db(pg_server: str) -> Iterator[str]:
    """An empty database of its own on the session server."""
    name = "migrations_test"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = %s", (table,)).fetchall()
    return {r[0] for r in rows}


def test_versions_are_numbered_in_order():
    # 1, 2, 3, ... with no gap: a version is the count of changes applied
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == MIGRATIONS[-1].version


def _key(conn: psycopg.Connection, table: str) -> list[str]:
    """The primary key's columns, in order."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey)"
        " WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n", (table,)).fetchall()
    return [r[0] for r in rows]


def test_previous_release_upgrades_with_its_data(fresh_db, monkeypatch):
    monkeypatch.setenv("HPCPERF_CLUSTER", "frontera")
    with psycopg.connect(fresh_db) as conn:
        conn.execute(RELEASE_SQL.read_text())
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO job_data (jobid, username, ncpus, hosts) "
                     "VALUES ('101', 'alice', 48, '{c001,c002}')")
        conn.execute("INSERT INTO job_coverage (jobid, host, expected, present, day) "
                     "VALUES ('101', 'c001', 12, 11, '2026-03-19')")
        conn.execute("INSERT INTO host_data (time, host, type, event, value) "
                     "VALUES ('2026-03-19 10:00Z', 'c001', 'cpu', 'user', 0.5)")
        conn.commit()
        assert "req_cpus" not in _columns(conn, "job_data")
        assert not schema_is_current(conn)

        info = ensure_schema(conn)

        later = [m.version for m in MIGRATIONS[1:]]
        assert info["applied"] == later and recorded_version(conn) == SCHEMA_VERSION
        assert {"req_cpus", "req_tres", "submit_line"} <= _columns(conn, "job_data")
        assert conn.execute("SELECT jobid, username, ncpus, hosts, req_cpus FROM job_data"
                            ).fetchall() == [("101", "alice", 48, ["c001", "c002"], None)]
        # the old row gets the new column's default: no extra samples
        assert conn.execute("SELECT present, extra FROM job_coverage").fetchall() == [(11, 0)]
        # migration 5: the existing rows belong to the configured cluster, in every key
        for table in ("job_data", "job_coverage", "host_data"):
            assert conn.execute(f"SELECT cluster FROM {table}").fetchall() == [("frontera",)]
        for table, key in CLUSTER_KEYS.items():
            assert _key(conn, table) == list(key), table
        assert _key(conn, "job_data") == ["jobid", "cluster"]
        assert _key(conn, "host_data") == ["host", "time", "type", "device", "event", "cluster"]
        # the same job id on another cluster is another job
        conn.execute("INSERT INTO job_data (cluster, jobid, username) VALUES ('ls6', '101', 'bob')")
        assert conn.execute("SELECT cluster, username FROM job_data ORDER BY 1").fetchall() == [
            ("frontera", "alice"), ("ls6", "bob")]
        conn.execute("UPDATE job_data SET req_cpus = 96, submit_line = 'sbatch run.sh'")
        assert schema_is_current(conn)
        assert ensure_schema(conn)["applied"] == []  # a second call changes nothing
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
        assert versions == [(1,), *((v,) for v in later)]
        # no default: a writer that names no cluster fails instead of guessing one
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO job_data (jobid) VALUES ('102')")


def test_a_run_migrates_only_when_the_recorded_version_is_behind(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        assert recorded_version(conn) == 0
        conn.commit()
    with Database(url=fresh_db).connect() as conn:  # a run's first connection migrates
        assert recorded_version(conn) == SCHEMA_VERSION
        assert "extra" in _columns(conn, "job_coverage")
    with psycopg.connect(fresh_db) as conn:
        conn.execute("DELETE FROM schema_version WHERE version = %s", (SCHEMA_VERSION,))
        conn.commit()
    with Database(url=fresh_db).connect() as conn:  # behind again: migrated again
        assert recorded_version(conn) == SCHEMA_VERSION
    with psycopg.connect(fresh_db) as conn:  # current: the run must not touch the schema
        conn.execute("ALTER TABLE job_coverage DROP COLUMN extra")
        conn.commit()
    with Database(url=fresh_db).connect() as conn:
        assert "extra" not in _columns(conn, "job_coverage")


def _shape(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                        (table,)).fetchall()
    return dict(rows)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_migrations_make_the_declared_tables(fresh_db, table):
    """The declaration (COPY lists, frame schemas) and the migrated DDL agree, column by column."""
    with psycopg.connect(fresh_db) as conn:
        ensure_schema(conn)
        assert _shape(conn, table) == TABLES[table].sql_types


def test_upgraded_release_has_the_declared_tables(fresh_db):
    with psycopg.connect(fresh_db) as conn:
        conn.execute(RELEASE_SQL.read_text())
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        ensure_schema(conn)
        for name, table in TABLES.items():
            assert _shape(conn, name) == table.sql_types, name
