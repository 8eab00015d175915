"""NUL bytes and other impossible text in every parameter, through the real server.

PostgreSQL refuses NUL in text (``psycopg.DataError``); before, such a
parameter gave a blank page and a traceback in the log. Now each one is
refused before SQL: the page reads "not found" or empty, with a note.
"""

from __future__ import annotations

import pytest
from bokeh_client import page_document

pytestmark = pytest.mark.integration

NOTE = "The address holds characters that no job id, name or date contains"

CASES = [
    # path, what the page must say, what it must not show
    ("job?jobid=1001%00", "Job 1001\\\\x00 not found.", "cfd-run"),
    ("job?jobid=%ff%fe1001", "not found.", "cfd-run"),
    ("jobs?name=%00&user=al%00ice", "of &lt;strong&gt;0&lt;/strong&gt;", "cfd-run"),
    # a choice no select offers falls back to "any", as an unknown state does
    ("jobs?state=FAILED%00&partition=%00", "any", "Traceback"),
    ("compare?jobids=1001%00,1003", "Not found: 1001\\\\x00", "cfd-run"),
    ("user?user=alice%00", "0", "cfd-run"),
    ("host?host=c001%00", "not found.", "w007"),
    ("overview?start=%00&end=2026-03-01%00", "Cluster overview", "Traceback"),
]


@pytest.mark.parametrize(("path", "says", "hides"), CASES, ids=[c[0] for c in CASES])
def test_nul_and_invalid_text_in_parameters(web, path, says, hides):
    before = web.log.read_text()
    status, doc = page_document(web, path, {})
    assert status == 101
    assert says in doc, doc[:2000]
    assert hides not in doc
    if "overview" not in path:
        assert NOTE in doc
    log = web.log.read_text()[len(before):]
    assert "Traceback" not in log and "DataError" not in log, log


def test_data_functions_refuse_nul_before_sql(dataset):
    import psycopg

    from dashboards import data

    with psycopg.connect(dataset) as conn:
        assert data.job_record(conn, "1001\x00") is None
        assert data.job_record(conn, "1001") is not None  # the control
        jobs, total = data.list_jobs(conn, data.JobFilter(name="cfd\x00"))
        assert jobs.is_empty() and total == 0
        jobs, total = data.list_jobs(conn, data.JobFilter(user="alice\ufffd"))
        assert total == 0
        assert data.metrics_for_jobs(conn, ["1001\x00"], data.STAFF).is_empty()
        assert data.valid_text("x" * data.MAX_TEXT) and not data.valid_text("x" * 300)
