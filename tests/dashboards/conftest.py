"""The data set in the test database, real ``panel serve`` processes on it (one
without access control, one with basic auth), and a real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_dataset import load
from hpcperf_demo.generate import peak_settings

from dashboards.users import hash_password, save
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pass", "staffer": "staff-pw"}
#: The secret the proxy sends in header mode (tests play the proxy).
PROXY_SECRET = "proxy-secret-for-tests-" + "s" * 20
PROXY = {"X-HPCPerf-Proxy-Secret": PROXY_SECRET}


@pytest.fixture
def dataset(pg_url: str) -> str:
    """The test database holding the data set (with no filter choices cached from before)."""
    from dashboards import data

    load(pg_url)
    data._CHOICES.clear()
    return pg_url


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0,
               headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            request = urllib.request.Request(url, headers=headers or {})
            # a loaded machine renders the first page slowly: one long probe,
            # not a queue of abandoned short ones the server still has to render
            with urllib.request.urlopen(request, timeout=60) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # answering (e.g. a sign-in provider's refusal of a bare probe)
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"panel serve did not answer {url} in {timeout}s:\n{log.read_text()}")


class Served(str):
    """A served base URL that also knows its log file."""

    log: Path


def _serve(pg_server: str, folder: Path, extra_env: dict[str, str],
           probe_headers: dict[str, str] | None = None,
           port: int | None = None) -> Iterator[Served]:
    """``python -m dashboards.serve`` on a (free) loopback port; yields the base URL."""
    port = port or free_port()
    log = folder / "serve.log"
    home = folder / "home"
    env = dict(os.environ, HPCPERF_WEB_PORT=str(port), HPCPERF_DATABASE_URL=pg_server,
               HPCPERF_HOME=str(home), **extra_env)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dashboards.serve"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = Served(f"http://127.0.0.1:{port}")
    base.log = log
    try:
        _wait_http(f"{base}/login" if "HPCPERF_BASIC_AUTH_FILE" in extra_env else f"{base}/jobs",
                   proc, log, headers=probe_headers)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def web(pg_server: str, tmp_path_factory) -> Iterator[str]:
    """The dashboards with ``HPCPERF_AUTH=none`` (everyone is staff) over the data set."""
    load(pg_server)
    yield from _serve(pg_server, tmp_path_factory.mktemp("panel"), {"HPCPERF_AUTH": "none"})


@pytest.fixture(scope="module")
def web_basic(pg_server: str, tmp_path_factory) -> Iterator[str]:
    """The dashboards behind basic auth: alice and bob are researchers, staffer is staff."""
    load(pg_server)
    folder = tmp_path_factory.mktemp("panel-basic")
    credentials = folder / "users.json"
    save(credentials, {user: hash_password(pw, rounds=4) for user, pw in PASSWORDS.items()})
    yield from _serve(pg_server, folder, {
        "HPCPERF_AUTH": "basic", "HPCPERF_BASIC_AUTH_FILE": str(credentials),
        "HPCPERF_STAFF": "staffer", "HPCPERF_WEB_SECRET": "test-secret-" + "x" * 30,
    })


@pytest.fixture(scope="module")
def web_header(pg_server: str, tmp_path_factory) -> Iterator[str]:
    """The dashboards trusting a proxy's user and groups headers (with its secret)."""
    load(pg_server)
    yield from _serve(pg_server, tmp_path_factory.mktemp("panel-header"), {
        "HPCPERF_AUTH": "header", "HPCPERF_STAFF_GROUP": "hpc-staff",
        "HPCPERF_PROXY_SECRET": PROXY_SECRET,
    }, probe_headers=PROXY | {"X-Forwarded-User": "probe"})


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots() -> Path:
    root = Path(os.environ.get("HPCPERF_ARTIFACTS") or REPO / "artifacts")
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _demo_loader():
    """``load_demo`` from tests/jobs/demo_db.py (the pipeline's own code path), by file."""
    import importlib.util

    path = REPO / "tests" / "jobs" / "demo_db.py"
    spec = importlib.util.spec_from_file_location("demo_db_for_pages", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.load_demo


@pytest.fixture(scope="session")
def demo_web(pg_server: str, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    """The dashboards over the default demo cluster, loaded by the pipeline's code into a
    database of its own (other modules empty the session database between tests); once
    per session, shared by the modules that read the demo (pages, data API).
    Yields (base URL, the loaded ``DemoDB``: plan and ground truth)."""
    import psycopg

    from hpcperfstats.db.schema import ensure_schema

    name = "demo_pages"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
    folder = tmp_path_factory.mktemp("demo-pages")
    demo = _demo_loader()(url, folder)
    _demo_applications(url, folder / "archive", demo)
    # the demo node's peaks, as ``hpcperf demo`` sets them: the roofline draws its roof
    for base in _serve(url, folder, {"HPCPERF_AUTH": "none", **peak_settings(demo.cfg)}):
        yield base, demo


def _demo_applications(url: str, archive: Path, demo: Any) -> None:
    """``job_applications`` of the demo's days, as the asset builds them."""
    import psycopg

    from hpcperfstats.apps.load import build_job_applications
    from hpcperfstats.apps.rules import app_rules_version, load_app_rules
    from hpcperfstats.config import cluster_name

    first = demo.cfg.start.replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(url) as conn:
        build_job_applications(conn, archive, first, first + timedelta(days=3),
                               load_app_rules(), app_rules_version(), cluster_name())
