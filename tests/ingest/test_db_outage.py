"""PostgreSQL stopped during host_data: a clear failure, then a clean retry."""

from __future__ import annotations

import psycopg
import pytest

from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ingest.drain import store_messages
from hpcperfstats.ports import free_port

from .conftest import START, demo_bodies, reference_rows

pytestmark = pytest.mark.integration

H1 = "2026-11-20-12:00"
H2 = "2026-11-20-13:00"


def run_hour(key: str):
    from hpcperf_dagster.definitions import defs

    job = defs.resolve_job_def("host_data_job")
    return job.execute_in_process(partition_key=key, raise_on_error=False)


def test_database_down_fails_clearly_then_retry_fills_the_hour(tmp_path, monkeypatch):
    pgdata = tmp_path / "pg"  # a server of its own: the session one keeps running
    url = embedded.start(pgdata, free_port())
    try:
        home = tmp_path / "home"
        monkeypatch.setenv("HPCPERF_HOME", str(home))
        monkeypatch.setenv("HPCPERF_DATABASE_URL", url)
        bodies = demo_bodies(nodes=2, hours=2)
        store_messages(bodies, home / "archive", home / "quarantine")
        with psycopg.connect(url) as conn:
            ensure_schema(conn)
        assert run_hour(H1).success

        embedded.stop(pgdata)
        failed = run_hour(H2)
        assert not failed.success
        error = failed.get_step_failure_events()[0].step_failure_data.error
        assert "database unavailable" in error.message
        assert "retried after HPCPERF_RETRY_AFTER_S" in error.message

        embedded.start(pgdata, int(url.rsplit(":", 1)[1].split("/")[0]))
        assert run_hour(H2).success
        with psycopg.connect(url) as conn:
            got = conn.execute("SELECT count(*), count(DISTINCT (host, time)), "
                               "min(time), max(time) FROM host_data").fetchone()
        expected = reference_rows(bodies, START, START.replace(hour=14))
        # both hours, every row once: no gap, no duplicate
        assert got[:2] == (expected.height, 48)
        assert (got[2], got[3]) == (expected["time"].min(), expected["time"].max())
    finally:
        embedded.stop(pgdata)
