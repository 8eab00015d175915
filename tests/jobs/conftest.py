"""The default demo cluster loaded once into the session database for this folder."""

from __future__ import annotations

import psycopg
import pytest
from demo_db import DemoDB, load_demo


@pytest.fixture(scope="module")
def demo_db(pg_server: str, tmp_path_factory) -> DemoDB:
    with psycopg.connect(pg_server) as conn:
        conn.execute("TRUNCATE host_data, job_data, job_metrics, job_series, job_series_rollup, "
                     "job_coverage, "
                     "job_flags, job_scripts")
    return load_demo(pg_server, tmp_path_factory.mktemp("demo"))
