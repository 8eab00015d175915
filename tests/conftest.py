"""Shared test fixtures: real services on loopback, started and stopped here.

Each session gets its own embedded PostgreSQL and its own RabbitMQ node under
a temporary directory, so tests never touch a developer's data or a system
broker. Tests that need neither service never start them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hpcperf_demo import rabbitmq
from hypothesis import HealthCheck, settings

from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "real"
STAMPEDE_RAW = FIXTURES / "stampede3-c571-001.raw"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Hypothesis: CI runs a fixed, derandomised budget so a run is reproducible and
# its time predictable; a developer's run explores new random cases each time.
# HYPOTHESIS_PROFILE overrides either (e.g. "deep" for a long fuzzing session).
settings.register_profile(
    "ci", derandomize=True, max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") == "true" else "dev"))


@pytest.fixture(scope="session")
def stampede_text() -> str:
    """The real raw stats file from a Stampede3 node (shared fixture)."""
    return STAMPEDE_RAW.read_text()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> Iterator[str]:
    """An embedded PostgreSQL on 127.0.0.1 for the whole session; its URL."""
    pgdata = tmp_path_factory.mktemp("pg") / "pgdata"
    url = embedded.start(pgdata, free_port())
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
    yield url
    embedded.stop(pgdata)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """The session database, emptied of data before each test that asks."""
    with psycopg.connect(pg_server) as conn:
        ensure_schema(conn)
        conn.execute("TRUNCATE host_data, job_data, job_metrics, job_series, job_coverage, "
                     "job_flags, job_scripts")
    return pg_server


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory) -> Iterator[rabbitmq.RabbitNode]:
    """A private RabbitMQ node on 127.0.0.1 (installs Debian's package if absent)."""
    rabbitmq.ensure_installed()
    # not under pytest's 0700 tmp dir: Debian's scripts run the node as 'rabbitmq'
    base = Path(tempfile.mkdtemp(prefix="hpcperf-rabbit-"))
    base.chmod(0o755)
    # node names are per machine (epmd): unique per test session
    node = rabbitmq.node(base, free_port(), name=f"hpcperftest{os.getpid()}")
    node.start()
    yield node
    node.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def hpcperf_env(tmp_path: Path, pg_url: str, monkeypatch) -> Path:
    """Point every HPCPERF_* setting at a fresh directory and the test database."""
    home = tmp_path / "hpcperf"
    home.mkdir()
    monkeypatch.setenv("HPCPERF_HOME", str(home))
    monkeypatch.setenv("HPCPERF_DATABASE_URL", pg_url)
    return home
