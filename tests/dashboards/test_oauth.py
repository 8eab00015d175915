"""OAuth mode against a real OpenID Connect provider (npm ``oidc-provider``) on loopback.

The provider signs with a key this test made, so the test can also mint
tokens: an expired one signed with the right key must be refused exactly
like a tampered or foreign-signed one. Sign-in goes through the provider's
own pages in a real Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from bokeh_client import get, page_document
from conftest import REPO, _serve, free_port
from cryptography.hazmat.primitives.asymmetric import rsa
from dashboard_dataset import load
from jwt.algorithms import RSAAlgorithm
from pagewatch import PageWatch
from tornado.web import create_signed_value, decode_signed_value

from dashboards.auth import derived_key

OIDC_DIR = REPO / "tests" / "oidc"
NODE = shutil.which("node")
CLIENT_ID, CLIENT_SECRET = "hpcperf-dashboards", "client-secret-for-tests-0123456789"
WEB_SECRET = "oauth-test-web-secret-" + "w" * 30
GROUPS = {"alice": ["users"], "bob": ["users"], "staffer": ["users", "hpc-staff"]}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NODE is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir(),
                       reason="Node.js or tests/oidc's npm packages missing (run scripts/setup)"),
]


def _jwk(key, kid: str) -> dict:
    return json.loads(RSAAlgorithm.to_jwk(key)) | {"kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def provider(signing_key, tmp_path_factory) -> Iterator[dict]:
    """The provider on a free port, registered for a dashboards port chosen here."""
    oidc_port, web_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    env = dict(os.environ, OIDC_PORT=str(oidc_port), OIDC_CLIENT_ID=CLIENT_ID,
               OIDC_CLIENT_SECRET=CLIENT_SECRET,
               OIDC_REDIRECT_URI=f"http://127.0.0.1:{web_port}/login",
               OIDC_JWKS=json.dumps({"keys": [_jwk(signing_key, "test-key")]}),
               OIDC_GROUPS=json.dumps(GROUPS))
    with log.open("w") as out:
        proc = subprocess.Popen([NODE, "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{oidc_port}"
    try:
        _wait(f"{issuer}/.well-known/openid-configuration", proc, log)
        yield {"issuer": issuer, "web_port": web_port}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"provider did not answer in {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def web_oauth(pg_server, provider, tmp_path_factory) -> Iterator[str]:
    load(pg_server)
    base = f"http://127.0.0.1:{provider['web_port']}"
    yield from _serve(pg_server, tmp_path_factory.mktemp("panel-oauth"), {
        "HPCPERF_AUTH": "oauth", "HPCPERF_OAUTH_ISSUER": provider["issuer"],
        "PANEL_OAUTH_KEY": CLIENT_ID, "PANEL_OAUTH_SECRET": CLIENT_SECRET,
        "PANEL_OAUTH_REDIRECT_URI": f"{base}/login", "HPCPERF_STAFF_GROUP": "hpc-staff",
        "HPCPERF_WEB_SECRET": WEB_SECRET,
    }, port=provider["web_port"])


def sign_in(browser, base: str, user: str) -> PageWatch:
    """Through the provider's own sign-in and consent pages, back to the job list."""
    watch = PageWatch(browser)
    page = watch.page
    page.goto(f"{base}/jobs")
    page.locator("input[name=login]").fill(user)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/jobs*", timeout=30_000)
    # the provider's development pages ask for a web font this closed network cannot
    # reach; only what happens on our pages counts
    watch.errors.clear()
    return watch


def cookies(watch: PageWatch) -> dict[str, str]:
    return {c["name"]: c["value"] for c in watch.context.cookies()}


def cookie_header(values: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in values.items())}


def signed(name: str, value: str) -> str:
    """A cookie signed with the server's cookie key (what only the server can make)."""
    return create_signed_value(derived_key("panel-cookie", WEB_SECRET), name, value).decode()


def minted(key, user: str, groups: list[str], exp_in: float, issuer: str, kid="test-key"):
    now = int(time.time())
    claims = {"iss": issuer, "aud": CLIENT_ID, "sub": user, "preferred_username": user,
              "groups": groups, "iat": now - 60, "exp": int(now + exp_in)}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def session_cookies(token: str, user: str) -> dict[str, str]:
    return {"user": signed("user", user), "id_token": signed("id_token", token)}


@pytest.mark.browser
def test_sign_in_group_claim_gives_staff_and_sign_out(web_oauth, browser, provider):
    watch = sign_in(browser, web_oauth, "staffer")
    try:
        page = watch.page
        page.get_by_text("Signed in as staffer (staff); you see all jobs.").wait_for(
            timeout=30_000)
        page.locator(".tabulator-cell[tabulator-field=jobid]").first.wait_for(timeout=30_000)
        ids = page.locator(".tabulator-cell[tabulator-field=jobid]").all_inner_texts()
        assert sorted(ids) == ["1001", "1002", "1003"]
        assert watch.errors == [], watch.errors
        watch.open(f"{web_oauth}/logout")
        left = cookies(watch)
        assert not left.get("user") and not left.get("id_token")
        answer = get(f"{web_oauth}/jobs", cookie_header(left))
        assert answer.status == 302  # signed out: back to the sign-in
    finally:
        watch.close()


@pytest.mark.browser
def test_researcher_signed_in_sees_only_own_jobs(web_oauth, browser):
    watch = sign_in(browser, web_oauth, "alice")
    try:
        watch.page.get_by_text("Signed in as alice; you see your jobs.").wait_for(timeout=30_000)
        status, doc = page_document(web_oauth, "job?jobid=1002", cookie_header(cookies(watch)))
        assert status == 101 and "Job 1002 not found." in doc
    finally:
        watch.close()


def test_minted_valid_token_is_accepted(web_oauth, signing_key, provider):
    """The control for the two refusals below: the same minting, unexpired, gets in."""
    token = minted(signing_key, "staffer", ["hpc-staff"], 600, provider["issuer"])
    status, doc = page_document(web_oauth, "jobs", cookie_header(session_cookies(token,
                                                                                  "staffer")))
    assert status == 101 and "Signed in as staffer (staff)" in doc


def test_expired_token_is_refused(web_oauth, signing_key, provider):
    token = minted(signing_key, "staffer", ["hpc-staff"], -120, provider["issuer"])
    answer = get(f"{web_oauth}/jobs", cookie_header(session_cookies(token, "staffer")))
    assert answer.status == 302  # to the sign-in, not the page
    assert "id token refused: Signature has expired" in web_oauth.log.read_text()


@pytest.mark.browser
def test_tampered_token_is_refused(web_oauth, browser, provider):
    watch = sign_in(browser, web_oauth, "alice")
    try:
        jar = cookies(watch)
    finally:
        watch.close()
    assert get(f"{web_oauth}/jobs", cookie_header(jar)).status == 200
    real = decode_signed_value(derived_key("panel-cookie", WEB_SECRET), "id_token",
                               jar["id_token"].strip('"')).decode()
    head, body, signature = real.split(".")
    claims = json.loads(jwt.utils.base64url_decode(body)) | {"groups": ["hpc-staff"]}
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    tampered = session_cookies(f"{head}.{body}.{signature}", "alice")
    assert get(f"{web_oauth}/jobs", cookie_header(tampered)).status == 302
    # the cookie itself altered (its signature no longer matches)
    user_cookie = jar["user"].strip('"')
    altered = user_cookie[:-4] + ("0000" if not user_cookie.endswith("0000") else "1111")
    assert get(f"{web_oauth}/jobs", cookie_header(jar | {"user": altered})).status == 302


def test_token_signed_by_another_key_is_refused(web_oauth, provider):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = minted(other, "staffer", ["hpc-staff"], 600, provider["issuer"])
    assert get(f"{web_oauth}/jobs", cookie_header(session_cookies(token, "staffer"))
               ).status == 302
