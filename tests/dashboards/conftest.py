"""The data set in the test database, a real ``panel serve`` on it, and a
real headless Chromium to look at it."""

from __future__ import annotations

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


@pytest.fixture
def dataset(pg_url: str) -> str:
    """The test database holding the two-job data set."""
    load(pg_url)
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


@pytest.fixture(scope="module")
def web(pg_server: str, tmp_path_factory) -> Iterator[str]:
    """``python -m dashboards.serve`` on a free loopback port over the data set; base URL."""
    load(pg_server)
    port = free_port()
    log = tmp_path_factory.mktemp("panel") / "serve.log"
    env = dict(os.environ, HPCPERF_WEB_PORT=str(port), HPCPERF_DATABASE_URL=pg_server)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dashboards.serve"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/jobs", proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


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
