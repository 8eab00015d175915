"""The data set in the test database, real ``panel serve`` processes on it (one
without access control, one with basic auth), and a real headless Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_dataset import load

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "staffer": "staff-pw"}


@pytest.fixture
def dataset(pg_url: str) -> str:
    """The test database holding the data set (with no filter choices cached from before)."""
    from dashboards import data

    load(pg_url)
    data._CHOICES.clear()
    return pg_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"panel serve did not answer {url} in {timeout}s:\n{log.read_text()}")


def _serve(pg_server: str, folder: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """``python -m dashboards.serve`` on a free loopback port; yields the base URL."""
    port = free_port()
    log = folder / "serve.log"
    env = dict(os.environ, HPCPERF_WEB_PORT=str(port), HPCPERF_DATABASE_URL=pg_server,
               **extra_env)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dashboards.serve"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/login" if "HPCPERF_BASIC_AUTH_FILE" in extra_env else f"{base}/jobs",
                   proc, log)
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
    credentials = folder / "credentials.json"
    credentials.write_text(json.dumps(PASSWORDS))
    yield from _serve(pg_server, folder, {
        "HPCPERF_AUTH": "basic", "HPCPERF_BASIC_AUTH_FILE": str(credentials),
        "HPCPERF_STAFF": "staffer", "HPCPERF_COOKIE_SECRET": "test-secret-" + "x" * 20,
    })


@pytest.fixture(scope="module")
def web_header(pg_server: str, tmp_path_factory) -> Iterator[str]:
    """The dashboards trusting a proxy's user and groups headers."""
    load(pg_server)
    yield from _serve(pg_server, tmp_path_factory.mktemp("panel-header"), {
        "HPCPERF_AUTH": "header", "HPCPERF_STAFF_GROUP": "hpc-staff",
    })


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
