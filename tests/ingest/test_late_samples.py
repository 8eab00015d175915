"""A node replaying its spool hours later re-triggers the hour its samples belong to.

Here the archive and the build; that Dagster then rebuilds exactly that hour
is ``tests/integration/test_lineage.py``.
"""

from __future__ import annotations

import psycopg
import pytest

from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.drain import store_messages

from .conftest import HOUR, START, demo_bodies, reference_rows


@pytest.mark.integration
def test_late_sample_reports_and_fills_its_old_hour(dirs, pg_url):
    bodies = demo_bodies(nodes=1, hours=3)  # one host, 36 samples over 12:00-15:00
    late = bodies[5]  # the 12:25 sample, held back in the node's spool
    on_time = bodies[:5] + bodies[6:]
    store_messages(on_time, dirs["archive"], dirs["quarantine"])
    with psycopg.connect(pg_url) as conn:
        for h in range(3):
            build_host_data(conn, dirs["archive"], START + h * HOUR, START + (h + 1) * HOUR, 3600)
        (before,) = conn.execute("SELECT count(DISTINCT time) FROM host_data").fetchone()
        assert before == 35

        stored = store_messages([late], dirs["archive"], dirs["quarantine"])
        assert stored.hours == {"2026-11-20-12:00"}  # only its own, old hour
        build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        got = conn.execute("SELECT count(*), count(DISTINCT time) FROM host_data").fetchone()
    # appended after 14:55 in the file, yet the rates come out as if it had been on time
    assert got == (reference_rows(bodies, START, START + 3 * HOUR).height, 36)
