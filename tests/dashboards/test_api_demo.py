"""The data API's search pages through the demo cluster exactly as the search page does.

Over the shared demo session (``demo_web``: the pipeline's own load of the
default demo cluster, its applications built from its archive), every filter
of the search page (every ``data.JobFilter`` field: the test fails when the
page gains one the API lacks) is asked for through the API, seven jobs a
page, paged by ``next_cursor`` and by ``next_offset``; both give the same
jobs in the same order as the search page's query (``data.list_jobs``, what
``JobSearch.refresh`` calls) gives in one list. Every sort is used, in both
directions.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import timedelta
from urllib.parse import urlencode

import psycopg
import pytest
from bokeh_client import get

from dashboards import data
from dashboards.api import FILTERS
from hpcperfstats.apps.load import build_job_applications
from hpcperfstats.apps.rules import app_rules_version, load_app_rules
from hpcperfstats.config import cluster_name

pytestmark = pytest.mark.integration

PAGE = 7


@pytest.fixture(scope="module")
def demo(demo_web):
    """(base URL, database URL, a value of each filter that the demo's jobs match)."""
    base, db = demo_web
    with psycopg.connect(db.url) as conn:
        start, end = conn.execute("SELECT min(start_time), max(end_time) FROM job_data"
                                  ).fetchone()
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        build_job_applications(conn, db.root / "archive", day, end + timedelta(days=1),
                               load_app_rules(), app_rules_version(), cluster_name())

        def top(query: str):
            return conn.execute(query).fetchone()[0]

        values = {
            "user": top("SELECT username FROM job_data GROUP BY 1 ORDER BY count(*) DESC, 1"
                        " LIMIT 1")[:3],  # a prefix, as the page's box takes it
            "account": top("SELECT account FROM job_data GROUP BY 1 ORDER BY count(*) DESC,"
                           " 1 LIMIT 1"),
            "partition": top("SELECT partition FROM job_data GROUP BY 1 ORDER BY count(*),"
                             " 1 LIMIT 1"),
            "state": "COMPLETED",
            "name": top("SELECT substr(jobname, 2, 3) FROM job_data ORDER BY jobid LIMIT 1"),
            "since": start + (end - start) / 2, "until": start + (end - start) / 2,
            "min_nodes": 2, "max_nodes": 1, "min_runtime_s": 3600.0, "max_runtime_s": 3600.0,
            "metric": "cpu_efficiency", "metric_max": 0.6, "metric_min": 0.3,
            "flag": top("SELECT flag FROM job_flags GROUP BY 1 ORDER BY count(*) DESC, 1"
                        " LIMIT 1"),
            "application": top("SELECT application FROM job_applications WHERE known"
                               " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"),
        }
    return base, db.url, values


def test_every_search_page_filter_is_an_api_parameter():
    page = {f.name for f in fields(data.JobFilter)} - {"exact"}  # exact: user/account pages
    assert page == {p.name for p in FILTERS}


SORTS = list(data.SORT_KEYS)
CASES = [  # the filter fields set in each case (metric with its bounds)
    ("user",), ("account",), ("partition",), ("state",), ("name",), ("since",), ("until",),
    ("min_nodes",), ("max_nodes",), ("min_runtime_s",), ("max_runtime_s",),
    ("metric", "metric_min"), ("metric", "metric_max"), ("flag",), ("application",),
    ("state", "since", "min_nodes"), (),
]


def _pages(base: str, args: dict[str, str], by: str) -> list[str]:
    """Every job id the API lists, page after page, following next_cursor or next_offset."""
    seen: list[str] = []
    step: dict[str, str] = {}
    for _ in range(100):
        got = get(f"{base}/api/v1/jobs?{urlencode(args | step | {'limit': PAGE})}", {})
        assert got.status == 200, got.body
        page = json.loads(got.body)
        assert len(page["jobs"]) <= PAGE
        seen += [j["jobid"] for j in page["jobs"]]
        following = page[f"next_{by}"]
        if following is None:
            return seen
        assert len(page["jobs"]) == PAGE
        step = {by: str(following)}
    raise AssertionError("no last page")


@pytest.mark.parametrize("case", CASES, ids=lambda c: "+".join(c) or "none")
def test_paging_and_filters_agree_with_the_search_page(demo, case):
    base, url, values = demo
    i = CASES.index(case)
    sort, descending = SORTS[i % len(SORTS)], i % 2 == 0
    chosen = {name: values[name] for name in case}
    filt = data.JobFilter(**chosen)
    with psycopg.connect(url) as conn:
        expected, total = data.list_jobs(conn, filt, data.STAFF, sort=sort,
                                         descending=descending, limit=10**6)
    expected = expected["jobid"].to_list()
    assert 0 < len(expected) == total, (case, "the demo's jobs should match")
    if not case:  # unfiltered: several page boundaries
        assert len(expected) > 3 * PAGE
    args = {k: v.isoformat() if hasattr(v, "isoformat") else str(v) for k, v in chosen.items()}
    args |= {"sort": sort, "order": "desc" if descending else "asc"}
    assert _pages(base, args, "cursor") == expected, (case, sort, descending)
    assert _pages(base, args, "offset") == expected, (case, sort, descending)


@pytest.mark.parametrize("descending", [False, True])
def test_the_efficiency_sort_pages_through_jobs_with_and_without_one(demo, descending):
    """Sorted by CPU efficiency, the jobs with one come from job_metrics' index and the
    rest (NULL, last) after them: the pages by cursor cross from one to the other."""
    base, url, _ = demo
    with psycopg.connect(url) as conn:
        expected, _ = data.list_jobs(conn, sort="cpu_eff", descending=descending, limit=10**6,
                                     offset=0)
        everything, _ = data.list_jobs(conn, sort="jobid", limit=10**6)
        missing = conn.execute("SELECT count(*) FROM job_data j WHERE NOT EXISTS (SELECT 1"
                               " FROM job_metrics m WHERE m.jobid = j.jobid AND m.metric ="
                               " 'cpu_efficiency' AND m.value IS NOT NULL)").fetchone()[0]
    assert 0 < missing < everything.height  # both kinds in the demo
    assert sorted(expected["jobid"]) == sorted(everything["jobid"])
    effs = expected["cpu_eff"].to_list()
    known = [e for e in effs if e is not None]
    assert effs[:len(known)] == known == sorted(known, reverse=descending)
    args = {"sort": "cpu_eff", "order": "desc" if descending else "asc"}
    assert _pages(base, args, "cursor") == expected["jobid"].to_list()
    assert _pages(base, args, "offset") == expected["jobid"].to_list()


def test_the_cursor_is_checked(demo):
    base, _, _ = demo
    first = json.loads(get(f"{base}/api/v1/jobs?limit=2&sort=nodes", {}).body)
    cursor = first["next_cursor"]
    assert first["total"] > 2 and cursor
    following = json.loads(get(f"{base}/api/v1/jobs?limit=2&sort=nodes&cursor={cursor}",
                               {}).body)
    assert following["total"] is None and following["next_offset"] is None
    for bad in (f"limit=2&sort=runtime&cursor={cursor}",  # another sort
                f"limit=2&sort=nodes&order=asc&cursor={cursor}",  # another order
                f"limit=2&sort=nodes&cursor={cursor}&offset=2",
                "sort=nodes&cursor=bm90IGpzb24", "sort=nodes&cursor=%2A%2A",
                # a well-formed cursor of the wrong kind of value
                "sort=nodes&cursor=WyJub2RlcyIsImRlc2MiLCJ4IiwiMSJd"):
        got = get(f"{base}/api/v1/jobs?{bad}", {})
        assert got.status == 400 and "cursor" in json.loads(got.body)["error"], bad
