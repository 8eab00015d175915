"""Forged identities against a real ``hpcperf web`` server: each one is refused.

The server runs in header mode behind "the proxy" these tests play (they
send the proxy's secret where the proxy would). The attacks are the ones
found on the unsigned server: a client-made session token naming another
user, a token signed with another key, a real token replayed under another
user's headers, a token offered to the page handler, and requests that
skip the proxy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bokeh.util.token import generate_jwt_token, generate_session_id
from bokeh_client import get, page_document, pull_document, token_of
from conftest import PROXY

pytestmark = pytest.mark.integration

ALICE = PROXY | {"X-Forwarded-User": "alice"}
BOB = PROXY | {"X-Forwarded-User": "bob"}
STAFFER = PROXY | {"X-Forwarded-User": "staffer", "X-Forwarded-Groups": "hpc-staff"}


def forged(headers: dict[str, str], key: bytes | None) -> str:
    """A session token a client made itself: unsigned (key None) or signed with ``key``."""
    session_id = generate_session_id(secret_key=key, signed=key is not None)
    payload = {"headers": headers, "cookies": {}, "arguments": {}}
    return generate_jwt_token(session_id, secret_key=key, signed=key is not None,
                              extra_payload=payload)


def test_control_alice_sees_her_jobs_through_the_websocket(web_header):
    status, doc = page_document(web_header, "jobs", ALICE)
    assert status == 101
    assert "cfd-run" in doc and "wide-sweep" in doc
    assert "proj-ml" not in doc  # bob's job (account proj-ml) is not in alice's list


def test_unsigned_token_naming_staff_is_refused(web_header):
    token = forged({"X-Forwarded-User": "staffer", "X-Forwarded-Groups": "hpc-staff"}, None)
    assert pull_document(web_header, "jobs", ALICE, token) == (403, "")
    # not even for the identity the live request really has
    assert pull_document(web_header, "jobs", ALICE, forged(ALICE, None))[0] == 403
    assert "session token not signed by this server" in web_header.log.read_text()


def test_token_signed_with_a_wrong_key_is_refused(web_header):
    token = forged({"X-Forwarded-User": "staffer", "X-Forwarded-Groups": "hpc-staff"},
                   b"an attacker's key of 32+ bytes....")
    assert pull_document(web_header, "jobs", STAFFER, token) == (403, "")


def test_valid_token_replayed_with_another_users_headers_is_refused(web_header):
    token = token_of(get(f"{web_header}/jobs", ALICE).body)
    assert pull_document(web_header, "jobs", BOB, token) == (403, "")  # not served as alice
    assert pull_document(web_header, "jobs", STAFFER, token) == (403, "")
    assert "session token names 'alice' but the request is 'bob'" in web_header.log.read_text()
    token = token_of(get(f"{web_header}/jobs", BOB).body)
    assert pull_document(web_header, "jobs", ALICE, token) == (403, "")  # nor as bob


def test_token_offered_to_the_page_handler_is_refused(web_header):
    token = token_of(get(f"{web_header}/jobs", STAFFER).body)
    assert get(f"{web_header}/jobs?bokeh-token={token}", BOB).status == 403
    assert get(f"{web_header}/jobs", BOB | {"Bokeh-Session-Id": "x"}).status == 403


def test_session_token_never_carries_the_proxy_secret(web_header):
    from bokeh.util.token import get_token_payload

    token = token_of(get(f"{web_header}/jobs", ALICE).body)
    assert PROXY["X-HPCPerf-Proxy-Secret"] not in str(get_token_payload(token))


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
def test_direct_request_without_the_proxy_secret_is_refused(web_header, secret):
    headers = {"X-Forwarded-User": "staffer", "X-Forwarded-Groups": "hpc-staff"}
    if secret is not None:
        headers["X-HPCPerf-Proxy-Secret"] = secret
    for path in ("jobs", "job?jobid=1002", "overview", "jobs/metadata", "jobs/autoload.js"):
        assert get(f"{web_header}/{path}", headers).status == 403, path
    token = token_of(get(f"{web_header}/jobs", STAFFER).body)
    assert pull_document(web_header, "jobs", headers, token)[0] == 403
    assert "no or wrong proxy secret" in web_header.log.read_text()


def test_proxy_naming_no_user_is_refused(web_header):
    assert get(f"{web_header}/jobs", PROXY).status == 403


def test_basic_mode_token_replayed_with_another_users_cookie_is_refused(web_basic):
    from test_routes import basic_sign_in

    alice, bob = basic_sign_in(web_basic, "alice"), basic_sign_in(web_basic, "bob")
    token = token_of(get(f"{web_basic}/jobs", alice).body)
    assert pull_document(web_basic, "jobs", bob, token) == (403, "")
    assert pull_document(web_basic, "jobs", {}, token)[0] == 403  # signed out: nobody
    status, doc = pull_document(web_basic, "jobs", alice, token)  # the control
    assert status == 101 and "cfd-run" in doc


def test_identify_reads_only_verified_sources(monkeypatch):
    """Pure logic: the proxy secret gates header mode; names with control characters
    are nobody; a session token (live=False) needs no secret, it is signed."""
    from dashboards import auth

    monkeypatch.setenv("HPCPERF_AUTH", "header")
    monkeypatch.setenv("HPCPERF_PROXY_SECRET", PROXY["X-HPCPerf-Proxy-Secret"])
    with pytest.raises(auth.Refused):
        auth.identify({"X-Forwarded-User": "alice"}, {}, live=True)
    assert auth.identify({"x-forwarded-user": "alice"}, {}, live=False) == auth.Identity("alice")
    got = auth.identify(STAFFER, {}, live=True)
    assert got == auth.Identity("staffer", frozenset({"hpc-staff"}))
    assert auth.identify(PROXY | {"X-Forwarded-User": "ali\x00ce"}, {}, live=True) is None
    monkeypatch.setenv("HPCPERF_STAFF_GROUP", "hpc-staff")
    assert auth.viewer_of(got).staff and not auth.viewer_of(auth.Identity("alice")).staff


def _server_key(served) -> bytes:
    """The session key the server derives from the secret it made under its HPCPERF_HOME."""
    from dashboards.auth import derived_key

    secret = (served.log.parent / "home" / "web-secret").read_text().strip()
    return derived_key("bokeh-session", secret).encode()


def test_expired_or_mismatched_token_signed_with_the_servers_key_is_refused(web_header):
    """Even with the server's own key (say, a leaked one): expired is refused, and a
    token naming someone else than the live request is refused; only the match opens."""
    key = _server_key(web_header)

    def minted(headers: dict[str, str], expiration: int = 300) -> str:
        session_id = generate_session_id(secret_key=key, signed=True)
        return generate_jwt_token(session_id, secret_key=key, signed=True,
                                  expiration=expiration,
                                  extra_payload={"headers": headers, "cookies": {},
                                                 "arguments": {}})

    assert pull_document(web_header, "jobs", ALICE, minted(ALICE, expiration=-10))[0] == 403
    staff_claim = {"X-Forwarded-User": "staffer", "X-Forwarded-Groups": "hpc-staff"}
    assert pull_document(web_header, "jobs", ALICE, minted(staff_claim))[0] == 403
    # same user, more groups than the proxy vouched for: refused too
    alice_staff = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": "hpc-staff"}
    assert pull_document(web_header, "jobs", ALICE, minted(alice_staff))[0] == 403
    status, doc = pull_document(web_header, "jobs", ALICE, minted({"X-Forwarded-User": "alice"}))
    assert status == 101 and "Signed in as alice; you see your jobs." in doc
    log = web_header.log.read_text()
    assert "session token expired" in log
    assert "Traceback" not in log  # every refusal is a clean 403 and one log line


def test_health_check_needs_no_identity_and_reveals_nothing(web_header):
    """The compose file's own health check of ``web`` passes in header mode."""
    compose = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
    check = yaml.safe_load(compose.read_text())["services"]["web"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    code = check[3].replace("127.0.0.1:5006", web_header.removeprefix("http://"))
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    health = get(f"{web_header}/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    assert get(f"{web_header}/jobs").status == 403  # the rest still needs the proxy
