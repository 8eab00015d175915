"""Basic mode: bcrypt hashes only, a command to add users, failed sign-ins braked
and logged (a real server of its own, since the brake holds per address)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from conftest import PASSWORDS, REPO, _serve
from dashboard_dataset import load

from dashboards import auth, users
from dashboards.users import FailureLimiter


def run_user(*args: str, stdin: str = "", env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "hpcperfstats.cli", "user", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=dict(os.environ, **(env or {})))


def test_user_add_stores_only_a_bcrypt_hash_in_a_private_file(tmp_path):
    path = tmp_path / "users.json"
    done = run_user("--file", str(path), "add", "alice", "--password-stdin",
                    stdin="correct horse\n")
    assert done.returncode == 0, done.stderr
    stored = json.loads(path.read_text())
    assert set(stored) == {"alice"} and "correct horse" not in path.read_text()
    assert stored["alice"].startswith("$2b$12$")  # bcrypt, work factor 12
    assert bcrypt.checkpw(b"correct horse", stored["alice"].encode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run_user("--file", str(path), "list").stdout.split() == ["alice"]
    short = run_user("--file", str(path), "add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "shorter than 8" in short.stderr
    assert run_user("--file", str(path), "remove", "alice").returncode == 0
    assert json.loads(path.read_text()) == {}


def test_plain_text_passwords_stop_the_server(tmp_path, pg_server):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"alice": "alice-pw"}))
    path.chmod(0o600)
    env = dict(os.environ, HPCPERF_AUTH="basic", HPCPERF_BASIC_AUTH_FILE=str(path),
               HPCPERF_HOME=str(tmp_path / "home"), HPCPERF_DATABASE_URL=pg_server,
               HPCPERF_WEB_PORT="1")
    done = subprocess.run([sys.executable, "-m", "dashboards.serve"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "alice not stored as bcrypt hashes" in done.stdout + done.stderr


def test_limiter_blocks_after_five_failures_for_the_window():
    now = [0.0]
    limiter = FailureLimiter(max_failures=5, window_s=900, clock=lambda: now[0])
    for _ in range(4):
        limiter.failed("user:alice", "ip:10.0.0.1")
    assert limiter.blocked_for("user:alice") == 0
    now[0] = 100.0
    limiter.failed("user:alice", "ip:10.0.0.1")
    assert limiter.blocked_for("user:alice") == pytest.approx(800.0)  # first failure + 900
    assert limiter.blocked_for("ip:10.0.0.1", "user:bob") == pytest.approx(800.0)
    assert limiter.blocked_for("user:bob", "ip:10.0.0.2") == 0
    now[0] = 900.0  # the first failure has left the window: four remain
    assert limiter.blocked_for("user:alice") == 0


def test_web_secret_is_made_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("HPCPERF_WEB_SECRET", raising=False)
    monkeypatch.setenv("HPCPERF_HOME", str(tmp_path))
    first = auth.web_secret()
    path = tmp_path / auth.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert auth.web_secret() == first  # every process of the site agrees on it
    assert auth.derived_key("bokeh-session") != auth.derived_key("panel-cookie")
    path.chmod(0o644)
    with pytest.raises(SystemExit, match="readable by others"):
        auth.web_secret()
    monkeypatch.setenv("HPCPERF_WEB_SECRET", "short")
    with pytest.raises(SystemExit, match="at least 32"):
        auth.web_secret()


@pytest.fixture(scope="module")
def web_braked(pg_server, tmp_path_factory):
    load(pg_server)
    folder = tmp_path_factory.mktemp("panel-brake")
    credentials = folder / "users.json"
    users.save(credentials, {u: users.hash_password(p, rounds=4) for u, p in PASSWORDS.items()})
    yield from _serve(pg_server, folder, {
        "HPCPERF_AUTH": "basic", "HPCPERF_BASIC_AUTH_FILE": str(credentials),
        "HPCPERF_WEB_SECRET": "brake-test-secret-" + "b" * 30,
    })


def sign_in(base: str, user: str, password: str) -> tuple[str, bool]:
    """(the message the sign-in page shows, whether a session cookie was set)."""
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    form = urllib.parse.urlencode({"username": user, "password": password}).encode()
    with opener.open(f"{base}/login", data=form, timeout=60) as resp:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(resp.url).query)
    return (query.get("error") or [""])[0], any(c.name == "user" for c in jar.cookiejar)


@pytest.mark.integration
def test_failed_sign_ins_are_rate_limited_and_logged(web_braked):
    assert sign_in(web_braked, "bob", PASSWORDS["bob"]) == ("", True)  # the control
    for _ in range(5):
        assert sign_in(web_braked, "alice", "guess") == ("Invalid username or password!",
                                                         False)
    message, cookie = sign_in(web_braked, "alice", PASSWORDS["alice"])  # right, but braked
    assert message.startswith("Too many failed sign-ins; try again in") and not cookie
    message, cookie = sign_in(web_braked, "bob", PASSWORDS["bob"])  # same address: braked
    assert message.startswith("Too many failed sign-ins") and not cookie
    log = Path(web_braked.log).read_text()
    assert log.count("failed sign-in for 'alice' from 127.0.0.1") == 5
    assert "sign-in refused for 'alice' from 127.0.0.1: too many failures" in log
    assert "signed in 'bob' from 127.0.0.1" in log
    assert PASSWORDS["alice"] not in log and "guess" not in log  # no password is logged


def test_users_file_must_be_private_json_of_hashes(tmp_path):
    path = tmp_path / "users.json"
    users.save(path, {"alice": users.hash_password("long enough", rounds=4)})
    assert set(users.load(path)) == {"alice"}
    path.chmod(0o644)
    with pytest.raises(SystemExit, match="readable by others"):
        users.load(path)
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="not JSON"):
        users.load(path)
    stored = {"alice": users.hash_password("long enough", rounds=4)}
    assert users.check(stored, "alice", "long enough")
    assert not users.check(stored, "alice", "wrong")
    assert not users.check(stored, "mallory", "long enough")  # unknown: same work, False
    assert not users.check(stored, "alice", "x" * 100)  # over bcrypt's 72 bytes: refused
