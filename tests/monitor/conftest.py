"""Fixtures for the monitor's tests: node trees and running the CLI.

The monitor is its own distribution (``monitor/``); when it is not
installed in the environment, its source directory is put on the path so
these tests run from a plain checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hpcperf_monitor.control import Control

MONITOR_SRC = Path(__file__).resolve().parents[2] / "monitor"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

try:
    import hpcperf_monitor  # noqa: F401
except ImportError:
    sys.path.insert(0, str(MONITOR_SRC))


@pytest.fixture(scope="session")
def tree4() -> Path:
    """Hand-built tree: 4 CPUs, 2 NUMA nodes, nvme0n1 + partition, lo + eth0."""
    return FIXTURES / "nodetree_4cpu"


@pytest.fixture(scope="session")
def recorded() -> Path:
    """Tree recorded from a real VM (2 CPUs, vda, zram0, loop*, 4 interfaces)."""
    return FIXTURES / "nodetree"


def monitor_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run ``hpcperf-monitor ARGS`` from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(MONITOR_SRC), env.get("PYTHONPATH", "")) if p
    )
    return [sys.executable, "-m", "hpcperf_monitor", *args], env


def _run_monitor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``hpcperf-monitor ARGS`` in a fresh interpreter, as a node runs it."""
    argv, env = monitor_command(*args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def run_monitor():
    """Runs ``hpcperf-monitor`` as a subprocess; returns the CompletedProcess."""
    return _run_monitor


@pytest.fixture
def start_monitor():
    """Starts ``hpcperf-monitor`` in the background; returns the Popen (pipes text)."""
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        argv, env = monitor_command(*args)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:  # only the processes this test started
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def daemon_dir(tmp_path: Path) -> Path:
    """A host state dir whose daemon.pid says this process is the daemon."""
    state = tmp_path / "state"
    state.mkdir()
    Control(state).pid_path.write_text(f"{os.getpid()}\n")
    return state
