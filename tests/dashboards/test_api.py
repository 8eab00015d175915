"""The data API in the dashboards' server (basic sign-in): tokens, access, paging, formats.

Alice and bob are researchers, staffer is staff (see ``conftest.web_basic``).
Every route's refusal of another user's job is in ``test_routes``; here the
API's own promises: the OpenAPI document validates and lists every route,
forged and revoked tokens are refused, paging and filters give what the
search page's query gives, bad parameters (NUL bytes) are a 400, CSV cells
cannot run as formulas, series come as Parquet, and ``hpcperf job --url``
reads a job through it.
"""

from __future__ import annotations

import io
import json

import polars as pl
import psycopg
import pytest
from bokeh_client import get
from openapi_spec_validator import validate
from test_routes import basic_sign_in, routes

from dashboards import data, tokens
from dashboards.api import ENDPOINTS
from dashboards.auth import Viewer
from hpcperfstats.config import cluster_name

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(base: str, path: str, headers: dict[str, str]) -> tuple[int, object]:
    got = get(f"{base}{path}", headers)
    try:
        return got.status, json.loads(got.body)
    except json.JSONDecodeError:
        return got.status, got.body


@pytest.fixture(scope="module")
def made(pg_server: str, web_basic: str) -> dict[str, str]:
    """API tokens of alice and staffer (the server and the tests share the database)."""
    with psycopg.connect(pg_server) as conn:
        return {"alice": tokens.create(conn, "alice", "tests"),
                "staffer": tokens.create(conn, "staffer")}


def test_openapi_document_validates_and_lists_every_route(web_basic, made):
    status, doc = answer(web_basic, "/api/v1/openapi.json", bearer(made["alice"]))
    assert status == 200
    validate(doc)  # raises on any departure from the OpenAPI 3.1 specification
    assert set(doc["paths"]) == {ep.path for ep in ENDPOINTS}
    assert {ep.pattern for ep in ENDPOINTS} <= set(routes(web_basic))


def test_tokens_identify_and_forged_or_revoked_ones_are_refused(web_basic, made, pg_server):
    assert answer(web_basic, "/api/v1/me", bearer(made["alice"])) == (
        200, {"user": "alice", "staff": False, "cluster": cluster_name(),
              "clusters": [cluster_name()]})
    assert answer(web_basic, "/api/v1/me", bearer(made["staffer"]))[1]["staff"] is True
    assert answer(web_basic, "/api/v1/jobs/1002", bearer(made["alice"]))[0] == 404  # bob's
    assert answer(web_basic, "/api/v1/jobs/1002", bearer(made["staffer"]))[0] == 200
    token_id, secret = made["alice"].removeprefix("hpst_").split("_", 1)
    forged = [f"hpst_{token_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",
              f"hpst_{token_id}_", "hpst_nosuchid_" + secret, "x" * 300]
    for token in forged:
        assert answer(web_basic, "/api/v1/me", bearer(token))[0] == 401, token
    assert answer(web_basic, "/api/v1/me", {"Authorization": "Basic YWxpY2U6eA=="})[0] == 401
    assert answer(web_basic, "/api/v1/me", {})[0] == 401  # nobody: sign in first
    with psycopg.connect(pg_server) as conn:
        spare = tokens.create(conn, "alice")
        assert answer(web_basic, "/api/v1/me", bearer(spare))[0] == 200
        assert tokens.revoke(conn, spare.removeprefix("hpst_").split("_")[0])
    assert answer(web_basic, "/api/v1/me", bearer(spare))[0] == 401


def test_the_dashboards_sign_in_works_too(web_basic):
    alice = basic_sign_in(web_basic, "alice")
    status, job = answer(web_basic, "/api/v1/jobs/1001", alice)
    assert status == 200 and job["job"]["username"] == "alice"
    assert {"metrics", "flags", "coverage", "advice"} <= set(job)
    assert answer(web_basic, "/api/v1/jobs/1002", alice)[0] == 404


@pytest.mark.parametrize("query", [
    "sort=jobid&order=asc&limit=1&offset=1",
    "sort=runtime&order=desc&limit=2",
    "user=ali&partition=normal&sort=jobid",
    "state=FAILED",
    "metric=cpu_efficiency&metric_min=0.5&sort=jobid&order=asc",
])
def test_paging_and_filters_agree_with_the_search_page(web_basic, made, pg_server, query):
    args = dict(p.split("=") for p in query.split("&"))
    status, page = answer(web_basic, f"/api/v1/jobs?{query}", bearer(made["staffer"]))
    assert status == 200
    filt = data.JobFilter(user=args.get("user"), partition=args.get("partition"),
                          state=args.get("state"), metric=args.get("metric"),
                          metric_min=float(args["metric_min"]) if "metric_min" in args else None)
    with psycopg.connect(pg_server) as conn:
        frame, total = data.list_jobs(conn, filt, Viewer("staffer", staff=True),
                                      sort=args.get("sort", "end"),
                                      descending=args.get("order", "desc") == "desc",
                                      limit=int(args.get("limit", 50)),
                                      offset=int(args.get("offset", 0)))
    assert [j["jobid"] for j in page["jobs"]] == frame["jobid"].to_list()
    assert page["total"] == total and page["offset"] == int(args.get("offset", 0))


def test_a_researcher_searches_only_their_own_jobs(web_basic, made):
    status, page = answer(web_basic, "/api/v1/jobs?user=bob", bearer(made["alice"]))
    assert status == 200 and page["jobs"] == [] and page["total"] == 0
    status, page = answer(web_basic, "/api/v1/jobs?sort=jobid&order=asc", bearer(made["alice"]))
    assert [j["jobid"] for j in page["jobs"]] == ["1001", "1003"]
    assert answer(web_basic, "/api/v1/hosts", bearer(made["alice"]))[0] == 403
    assert answer(web_basic, "/api/v1/users/bob/summary", bearer(made["alice"]))[0] == 404
    status, mine = answer(web_basic, "/api/v1/users/alice/summary", bearer(made["alice"]))
    assert status == 200 and mine["jobs"] == 2


@pytest.mark.parametrize("path", [
    "/api/v1/jobs?user=al%00ice", "/api/v1/jobs/10%0001", "/api/v1/jobs?name=%0Aevil",
    "/api/v1/jobs?limit=abc", "/api/v1/jobs?limit=100000", "/api/v1/jobs?sort=password",
    "/api/v1/jobs?since=yesterday", "/api/v1/jobs?format=xml", "/api/v1/jobs?metric_min=nan",
    "/api/v1/jobs/1001/series?points=1",
])
def test_bad_parameters_are_a_400_with_the_reason(web_basic, made, path):
    status, body = answer(web_basic, path, bearer(made["alice"]))
    assert status == 400 and body["error"], (path, body)


def test_csv_cells_cannot_run_as_formulas(web_basic, made, pg_server):
    with psycopg.connect(pg_server) as conn:
        conn.execute("INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
                     " end_time, cluster) VALUES ('1009', 'alice', 'proj-cfd', 'normal',"
                     " '=HYPERLINK(\"http://evil/\")', 'COMPLETED', '2026-03-02', %s)",
                     (cluster_name(),))
    try:
        got = get(f"{web_basic}/api/v1/jobs?format=csv&name=HYPERLINK", bearer(made["alice"]))
    finally:
        with psycopg.connect(pg_server) as conn:
            conn.execute("DELETE FROM job_data WHERE jobid = '1009'")
    assert got.status == 200
    frame = pl.read_csv(io.StringIO(got.body))
    assert frame["name"].to_list() == ["'=HYPERLINK(\"http://evil/\")"]
    assert frame["user"].to_list() == ["alice"]


def test_series_as_parquet_and_json_agree(web_basic, made):
    import urllib.request

    url = f"{web_basic}/api/v1/jobs/1001/series?format=parquet&points=50"
    with urllib.request.urlopen(urllib.request.Request(url, headers=bearer(made["alice"])),
                                timeout=60) as resp:
        assert resp.headers["Content-Type"] == "application/vnd.apache.parquet"
        frame = pl.read_parquet(io.BytesIO(resp.read()))
    status, body = answer(web_basic, "/api/v1/jobs/1001/series?points=50",
                          bearer(made["alice"]))
    assert status == 200 and frame.height == len(body["points"]) > 0
    assert set(frame["host"]) == {"c001", "c002"}
    assert {"time", "host", "series", "value", "unit"} <= set(frame.columns)
    url = f"{web_basic}/api/v1/jobs?format=parquet&sort=jobid&order=asc"
    with urllib.request.urlopen(urllib.request.Request(url, headers=bearer(made["alice"])),
                                timeout=60) as resp:
        jobs = pl.read_parquet(io.BytesIO(resp.read()))
    assert jobs["jobid"].to_list() == ["1001", "1003"]  # bulk export, scoped like the rest


def test_hpcperf_job_reads_a_remote_server(web_basic, made, monkeypatch, capsys):
    from hpcperfstats.cli import main as hpcperf

    monkeypatch.setenv("HPCPERF_API_TOKEN", made["alice"])
    assert hpcperf(["job", "1001", "--url", web_basic]) == 0
    assert capsys.readouterr().out.startswith("Job 1001 (cfd-run)  user alice")
    assert hpcperf(["job", "1002", "--url", web_basic]) == 1  # bob's: as if not there


def test_series_stay_within_the_row_budget():
    from dashboards.api import series_points

    assert series_points(240, 2, 4) == 240
    assert series_points(240, 128, 4) == 20_000 // 512 == 39  # a 128-node job: coarser
    assert series_points(5000, 10_000, 8) == 2


def test_series_of_one_host_or_over_the_hosts(web_basic, made):
    status, one = answer(web_basic, "/api/v1/jobs/1001/series?host=c001", bearer(made["alice"]))
    assert status == 200 and {p["host"] for p in one["points"]} == {"c001"}
    assert answer(web_basic, "/api/v1/jobs/1001/series?host=w001", bearer(made["alice"]))[0] \
        == 404  # a host of alice's other job, not of this one
    status, agg = answer(web_basic, "/api/v1/jobs/1001/series?aggregate=hosts",
                         bearer(made["alice"]))
    assert status == 200 and set(agg["points"][0]) == {"series", "time", "mean", "min", "max"}


def test_the_token_command_creates_lists_and_revokes(web_basic, pg_server, monkeypatch,
                                                      capsys):
    from hpcperfstats.cli import main as hpcperf

    monkeypatch.setenv("HPCPERF_DATABASE_URL", pg_server)
    assert hpcperf(["api-token", "create", "bob", "--note", "portal"]) == 0
    token = capsys.readouterr().out.strip()
    token_id = token.removeprefix("hpst_").split("_")[0]
    assert answer(web_basic, "/api/v1/me", bearer(token))[1] == {
        "user": "bob", "staff": False, "cluster": cluster_name(), "clusters": [cluster_name()]}
    assert hpcperf(["api-token", "list"]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [token_id, "bob", "portal"] in [row[:3] for row in listed]
    assert token.split("_", 2)[2] not in "\n".join("\t".join(r) for r in listed)  # hash only
    with psycopg.connect(pg_server) as conn:
        (stored,) = conn.execute("SELECT token_hash FROM api_tokens WHERE token_id = %s",
                                 (token_id,)).fetchone()
    assert token not in stored and len(stored) == 64
    assert hpcperf(["api-token", "revoke", token_id]) == 0
    assert hpcperf(["api-token", "revoke", token_id]) == 1  # no live token any more
    assert answer(web_basic, "/api/v1/me", bearer(token))[0] == 401


# --- applications (job_applications: the data set's OpenFOAM, shell, Python, unknown) ---

OPENFOAM_1001 = {"application": "OpenFOAM", "category": "fluid dynamics", "known": True,
                 "share": 0.9, "processes": 64, "basis": "cpu",
                 "executables": "/opt/apps/openfoam11/bin/simpleFoam"}


def test_a_job_carries_its_applications(web_basic, made):
    status, job = answer(web_basic, "/api/v1/jobs/1001", bearer(made["alice"]))
    assert status == 200
    assert job["applications"] == [
        OPENFOAM_1001,
        {"application": "shell", "category": "launcher", "known": True, "share": 0.1,
         "processes": 1, "basis": "cpu", "executables": "/usr/bin/bash"}]
    status, job = answer(web_basic, "/api/v1/jobs/1003", bearer(made["alice"]))
    assert [(a["application"], a["share"], a["basis"]) for a in job["applications"]] == [
        ("OpenFOAM", 1.0, "memory")]


@pytest.mark.parametrize(("who", "application", "jobids"), [
    ("staffer", "OpenFOAM", ["1001", "1003"]), ("staffer", "Python", ["1002"]),
    ("alice", "OpenFOAM", ["1001", "1003"]), ("alice", "Python", []),  # bob's: not hers
    ("staffer", "openfoam", []),  # names are exact, as the rules give them
])
def test_search_by_application(web_basic, made, who, application, jobids):
    status, page = answer(web_basic, f"/api/v1/jobs?application={application}&sort=jobid"
                          "&order=asc", bearer(made[who]))
    assert status == 200 and [j["jobid"] for j in page["jobs"]] == jobids


RANGE_ARGS = "since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z"


def test_the_applications_summary_for_staff(web_basic, made):
    status, body = answer(web_basic, f"/api/v1/applications?{RANGE_ARGS}",
                          bearer(made["staffer"]))
    assert status == 200 and body["scope"] == "all"
    rows = {r["application"]: r for r in body["applications"]}
    assert set(rows) == {"OpenFOAM", "shell", "Python", "unknown"}
    # by hand: 1001 ran 55 min on 64 cores, 90 % OpenFOAM; 1003 55 min on 640 cores, all of it
    assert rows["OpenFOAM"]["jobs"] == 2 and rows["OpenFOAM"]["users"] == 1
    assert rows["OpenFOAM"]["core_hours"] == pytest.approx(0.9 * 64 * 55 / 60 + 640 * 55 / 60)
    assert rows["Python"]["core_hours"] == pytest.approx(0.7 * 32 * 55 / 60)  # bob's 1002
    assert rows["Python"]["top_flags"] == "memory_near_limit (1)"
    status, one = answer(web_basic, f"/api/v1/applications?{RANGE_ARGS}&application=Python",
                         bearer(made["staffer"]))
    assert [r["application"] for r in one["applications"]] == ["Python"]


def test_a_researcher_summarises_their_own_jobs_or_the_pooled_cluster(web_basic, made):
    status, mine = answer(web_basic, f"/api/v1/applications?{RANGE_ARGS}",
                          bearer(made["alice"]))
    assert status == 200 and mine["scope"] == "mine"
    assert {r["application"] for r in mine["applications"]} == {"OpenFOAM", "shell"}
    # the whole cluster: no application here has 20 jobs of 5 users, so nothing is shown
    status, pooled = answer(web_basic, f"/api/v1/applications?{RANGE_ARGS}&scope=cluster",
                            bearer(made["alice"]))
    assert status == 200 and pooled["applications"] == [] and pooled["scope"] == "cluster"
    assert answer(web_basic, "/api/v1/applications?scope=all", bearer(made["alice"]))[0] == 400


def test_the_pooled_summary_shows_only_applications_over_the_privacy_threshold(
        web_basic, pg_server, monkeypatch):
    """With the pool's thresholds at 2 jobs of 1 user: OpenFOAM (alice's two jobs) passes,
    bob's Python (one job) and the single-job shell do not, though everyone's jobs count."""
    from datetime import UTC, datetime

    monkeypatch.setattr(data, "MIN_POOL_JOBS", 2)
    monkeypatch.setattr(data, "MIN_POOL_USERS", 1)
    with psycopg.connect(pg_server) as conn:
        frame = data.application_summary(
            conn, Viewer("bob", staff=False), datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 3, 2, tzinfo=UTC), pooled=True)
    assert frame["application"].to_list() == ["OpenFOAM"]
    assert frame["jobs"].to_list() == [2]


def test_hpcperf_job_prints_the_applications_locally_and_remotely(web_basic, made, pg_server,
                                                                 monkeypatch, capsys):
    from hpcperfstats.cli import main as hpcperf

    line = "Applications (share of CPU time): OpenFOAM 90% (fluid dynamics), shell 10% (launcher)"
    monkeypatch.setenv("HPCPERF_API_TOKEN", made["alice"])
    assert hpcperf(["job", "1001", "--url", web_basic]) == 0
    assert line in capsys.readouterr().out.splitlines()
    monkeypatch.setenv("HPCPERF_DATABASE_URL", pg_server)
    assert hpcperf(["job", "1001"]) == 0
    assert line in capsys.readouterr().out.splitlines()
    assert hpcperf(["job", "1003"]) == 0
    assert "Applications (share of memory): OpenFOAM 100% (fluid dynamics)" in (
        capsys.readouterr().out.splitlines())


def test_frames_serialise_as_the_dicts_would():
    """frame_json (polars writes the rows) says what _jsonable of the dicts says: ISO times
    in UTC, NaN and infinities null."""
    from datetime import UTC, datetime, timedelta, timezone

    from dashboards.api import _jsonable, dump_json, frame_json

    frame = pl.DataFrame({
        "time": [datetime(2026, 3, 1, 10, tzinfo=UTC),
                 datetime(2026, 3, 1, 12, 0, 1, 250_000, tzinfo=timezone(timedelta(hours=2)))],
        "value": [float("nan"), 1.5], "limit": [float("inf"), None], "host": ["c001", None],
        "n": [3, None]})
    got = json.loads(frame_json(frame))
    want = _jsonable(frame.to_dicts())
    for row in (*got, *want):
        row["time"] = datetime.fromisoformat(row["time"])
    assert got == want
    assert got[1]["time"] == datetime(2026, 3, 1, 10, 0, 1, 250_000, tzinfo=UTC)
    assert json.loads(dump_json({"jobid": "1", "points": frame.head(1)})) == {
        "jobid": "1", "points": [{"time": "2026-03-01T10:00:00+00:00", "value": None,
                                  "limit": None, "host": "c001", "n": 3}]}


# --- the job script and GPUs in the job's answer (issue 19): what the page shows --------

def test_the_job_script_reaches_its_owner_and_staff_only(web_basic, made, pg_server):
    """Bob's hostile script (``dashboard_dataset.HOSTILE_SCRIPT``) in the job's JSON: for
    bob and staff as written; alice's token gets the 404 of a job that is not there,
    without a word of the script; an account-mate who may see the job reads only the
    page's sentence. The job answer has no CSV form (no script in any export)."""
    from dashboard_dataset import HOSTILE_SCRIPT

    from dashboards.api import one_job
    from hpcperfstats.report.presentation import NO_SCRIPT, NOT_YOURS

    with psycopg.connect(pg_server) as conn:
        bob = tokens.create(conn, "bob", "tests")
    for who in (bob, made["staffer"]):
        status, job = answer(web_basic, "/api/v1/jobs/1002", bearer(who))
        assert status == 200
        assert job["script"] == {"status": "shown", "script": HOSTILE_SCRIPT,
                                 "size_bytes": len(HOSTILE_SCRIPT.encode()),
                                 "truncated": False, "note": ""}
    got = get(f"{web_basic}/api/v1/jobs/1002", bearer(made["alice"]))
    assert got.status == 404
    for piece in ("HYPERLINK", "onerror", "train.py", "#SBATCH", "script"):
        assert piece not in got.body, piece
    status, own = answer(web_basic, "/api/v1/jobs/1003", bearer(made["alice"]))
    assert status == 200 and own["script"]["status"] == "missing"
    assert own["script"]["note"] == NO_SCRIPT
    assert answer(web_basic, "/api/v1/jobs/1002?format=csv", bearer(made["staffer"]))[0] == 400
    with psycopg.connect(pg_server) as conn:  # carol shares bob's account (rolled back)
        conn.execute("INSERT INTO job_data (jobid, username, account, cluster) VALUES "
                     "('2001', 'carol', 'proj-ml', %s)", (cluster_name(),))
        carol = Viewer("carol", staff=False, share_accounts=True)
        seen = one_job(conn, carol, {"jobid": "1002"}, {})
        conn.rollback()
    assert seen["job"]["jobid"] == "1002"
    assert seen["script"] == {"status": "hidden", "script": None, "size_bytes": None,
                              "truncated": None, "note": NOT_YOURS}
    assert "HYPERLINK" not in json.dumps(seen, default=str)


def test_hpcperf_job_url_prints_a_hostile_script_as_text(web_basic, pg_server, monkeypatch,
                                                         capsys):
    """Through the API (bob's token) the terminal gets the script with every escape
    sequence, carriage return and NUL shown as ``\\xNN``: nothing a terminal obeys."""
    from dashboard_dataset import TERMINAL_SCRIPT

    from hpcperfstats.cli import main as hpcperf

    with psycopg.connect(pg_server) as conn:
        bob = tokens.create(conn, "bob", "tests")
        (kept,) = conn.execute("SELECT script FROM job_scripts WHERE jobid = '1002'"
                               ).fetchone()
        conn.execute("UPDATE job_scripts SET script = %s WHERE jobid = '1002'",
                      (TERMINAL_SCRIPT,))
        conn.commit()
        try:
            monkeypatch.setenv("HPCPERF_API_TOKEN", bob)
            assert hpcperf(["job", "1002", "--url", web_basic]) == 0
            out = capsys.readouterr().out
        finally:
            conn.execute("UPDATE job_scripts SET script = %s WHERE jobid = '1002'", (kept,))
            conn.commit()
    assert not any(ch in out for ch in "\x1b\x07\r\x00\x7f\x9b")
    assert "  | \\x1b]52;c;cm0gLXJmIH4K\\x07echo hi" in out.splitlines()
    assert "  | rm -rf ~/data\\x0dsafe line" in out.splitlines()
    assert "n/a (no GPUs allocated)" in out  # 1002 holds no GPUs: only the reason
