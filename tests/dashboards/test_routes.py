"""Every route the server answers refuses another user's job.

The routes come from the server's own table (``dashboards.server`` logs it
at start), not from a list written here: a page or endpoint added later is
tested too, and one this test cannot classify fails it. Alice asks each for
bob's job, host and user name; nothing of bob's may come back.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request

import pytest
from bokeh_client import get, pull_document, token_of
from conftest import PASSWORDS, PROXY

from dashboards.api import ENDPOINTS

pytestmark = pytest.mark.integration

#: What only bob's job shows: its account, its name (a script tag) and its flag's text.
BOBS = ("proj-ml", "alert(1)", "reached")
#: Bob's job, host and name, asked for in every way a page takes them.
ASK = "jobid=1002&jobids=1002&host=c002&user=bob&start=2026-03-01&end=2026-03-02"
#: What pages must say when they refuse (beyond showing none of bob's data).
REFUSALS = {"job": "Job 1002 not found.", "compare": "Not found: 1002",
            "host": "Host c002 not found."}


def routes(served) -> list[str]:
    (line,) = re.findall(r"hpcperf web routes: (\[.*\])", served.log.read_text())
    return json.loads(line)


def basic_sign_in(base: str, user: str) -> dict[str, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": user, "password": PASSWORDS[user]}).encode()
    opener.open(f"{base}/login", data=form, timeout=60).read()
    cookies = {c.name: c.value for c in jar}
    assert "user" in cookies, cookies
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def concrete(pattern: str) -> str:
    """A path the pattern matches (``/jobs/?$`` -> ``/jobs``, groups -> ``x``)."""
    path = pattern.rstrip("$").replace("/?", "").replace("(?!extensions/)", "")
    return re.sub(r"\(\.\*\)", "probe.js", path) or "/"


#: what a data API route's path parameters are filled with: all bob's
API_BOBS = {"jobid": "1002", "user": "bob", "account": "proj-ml"}


def check_api_route(base: str, pattern: str, alice: dict[str, str]) -> str:
    """A data API route asked for bob's job, user or account as alice: refused like
    nothing is there (404), staff-only (403), or answered without any of bob's data."""
    names = re.findall(r"\(\?P<(\w+)>", pattern)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: API_BOBS[m.group(1)], pattern.rstrip("$"))
    answer = get(f"{base}{path}?{ASK}", alice)
    for marker in (*BOBS, "1002" if names else "proj-ml"):
        assert marker not in answer.body, (pattern, marker)
    if names:
        assert answer.status == 404, (pattern, answer.status)
    else:
        assert answer.status in (200, 403), (pattern, answer.status)
    return "api"


def check_route(base: str, pattern: str, alice: dict[str, str]) -> str:
    """Ask one route for bob's job as alice; return what kind of route it was."""
    if pattern.startswith("/api/"):
        return check_api_route(base, pattern, alice)
    path = concrete(pattern)
    if path.endswith("/ws"):
        page = path[:-3].strip("/") or "jobs"
        answer = get(f"{base}/{page}?{ASK}", alice)
        assert answer.status == 200, (pattern, answer.status)
        status, doc = pull_document(base, page, alice, token_of(answer.body))
        assert status == 101, pattern
        for marker in BOBS:
            assert marker not in doc, (pattern, marker)
        if page in REFUSALS:
            assert REFUSALS[page] in doc, pattern
        return "page document"
    answer = get(f"{base}{path}?{ASK}&bokeh-autoload-element=x", alice)
    for marker in BOBS:
        assert marker not in answer.body, (pattern, marker)
    if "static" in path or path.startswith(("/components", "/favicon")):
        assert answer.status in (200, 400, 403, 404), (pattern, answer.status)
        return "static"
    if path in ("/login", "/logout"):
        return "sign-in"
    assert answer.status in (200, 302, 400, 403, 404), (pattern, answer.status)
    return "page or endpoint"


@pytest.mark.parametrize("mode", ["header", "basic"])
def test_every_route_refuses_another_users_job(mode, web_header, web_basic):
    base = web_header if mode == "header" else web_basic
    alice = (PROXY | {"X-Forwarded-User": "alice"} if mode == "header"
             else basic_sign_in(base, "alice"))
    table = routes(base)
    kinds = {pattern: check_route(base, pattern, alice) for pattern in table}
    pages = {p for p, kind in kinds.items() if kind == "page document"}
    # every page module has a WebSocket route, so every page's document was checked
    assert {p.split("/")[1] for p in pages} >= {"job", "jobs", "compare", "host", "user",
                                               "overview"}
    # every data API endpoint is in the server's table, so each was asked
    assert {ep.pattern for ep in ENDPOINTS} <= {p for p, kind in kinds.items() if kind == "api"}
    if mode == "basic":
        assert {"/login$", "/logout$"} <= set(table)
