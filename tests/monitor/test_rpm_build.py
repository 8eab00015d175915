"""The monitor's RPM builds from its sdist with ``rpmbuild`` and works.

Nodes get the monitor as ``hpcperf-monitor-VERSION.noarch.rpm`` (EL9),
so a spec that only looks right is not enough: this builds the real sdist,
runs ``rpmbuild -tb`` on it (the sdist carries the spec) with Debian's
``rpm`` package, then checks what the package holds and runs the packaged
monitor out of the extracted payload. ``--nodeps`` only because the
BuildRequires (python3-devel, systemd-rpm-macros) are EL packages that an
empty Debian RPM database cannot satisfy; ``__python3`` is this interpreter
so the package's site dir and shebang match the Python that runs it here.
``rpmbuild`` comes from ``./scripts/setup`` (CI runs it first): without it
these tests fail rather than skip, so a missing install step cannot hide.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import hpcperf_monitor
import pytest
from hpcperf_monitor.rawformat import read_raw

REPO = Path(__file__).resolve().parents[2]
MONITOR = REPO / "monitor"
SPEC = MONITOR / "packaging" / "hpcperf-monitor.spec"
NODETREE = REPO / "tests" / "fixtures" / "nodetree"
PYPROJECT = tomllib.loads((MONITOR / "pyproject.toml").read_text())
VERSION: str = PYPROJECT["project"]["version"]
SITE = re.compile(r"^/usr/lib/python3\.\d+/site-packages$")


@dataclass(frozen=True)
class Built:
    """What one sdist + rpmbuild run produced."""

    sdist: Path
    rpm: Path
    log: str = field(repr=False)


def run(*argv: str | Path, **kw) -> subprocess.CompletedProcess:
    """Run a command, text output captured, bounded so a hang fails the test."""
    kw.setdefault("text", True)
    return subprocess.run([str(a) for a in argv], capture_output=True, timeout=120, **kw)


def query(rpm: Path, *opts: str) -> list[str]:
    """``rpm -qp OPTS RPM`` output lines (queries the file, not the RPM database)."""
    result = run("rpm", "-qp", *opts, rpm)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Build the sdist from a copy of monitor/ (the checkout stays untouched), then the RPM."""
    if shutil.which("rpmbuild") is None:
        pytest.fail("rpmbuild not found: run ./scripts/setup, which installs Debian's "
                    "'rpm' package (CI runs it before the tests)")
    tmp = tmp_path_factory.mktemp("rpm")
    src = tmp / "monitor"
    shutil.copytree(MONITOR, src, ignore=shutil.ignore_patterns(
        "*.egg-info", "__pycache__", "dist", "build"))
    sdist = run(sys.executable, "-c",
                "import sys; from setuptools import build_meta as b; "
                "print(b.build_sdist(sys.argv[1]))", tmp / "dist", cwd=src)
    assert sdist.returncode == 0, sdist.stderr
    tarball = tmp / "dist" / sdist.stdout.strip().splitlines()[-1]
    build = run("rpmbuild", "-tb", "--nodeps",
                "--define", f"_topdir {tmp / 'rpmbuild'}",
                "--define", f"__python3 {sys.executable}", tarball)
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    rpms = list((tmp / "rpmbuild" / "RPMS" / "noarch").glob("*.rpm"))
    assert [r.name for r in rpms] == [f"hpcperf-monitor-{VERSION}-1.noarch.rpm"], log[-2000:]
    return Built(sdist=tarball, rpm=rpms[0], log=log)


@pytest.fixture(scope="module")
def payload(built: Built, tmp_path_factory) -> Path:
    """The RPM's files unpacked under a directory (rpm2archive: no cpio needed)."""
    root = tmp_path_factory.mktemp("payload")
    archive = run("rpm2archive", "-", input=built.rpm.read_bytes(), text=False)
    assert archive.returncode == 0, archive.stderr
    with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:gz") as tar:
        tar.extractall(root, filter="data")
    return root


def test_sdist_carries_what_the_spec_installs(built: Built):
    top = f"hpcperf_monitor-{VERSION}"
    with tarfile.open(built.sdist) as tar:
        names = set(tar.getnames())
    for path in ("packaging/hpcperf-monitor.spec", "packaging/hpcperf-monitor.service",
                 "packaging/monitor.conf", "packaging/prolog.sh", "packaging/epilog.sh",
                 "hpcperf_monitor/cli.py", "hpcperf_monitor/collectors/cpu.py",
                 "hpcperf_monitor.egg-info/PKG-INFO",
                 "hpcperf_monitor.egg-info/entry_points.txt"):
        assert f"{top}/{path}" in names, path
    assert not [n for n in names if n.endswith(".pyc")]


def test_one_version_everywhere(built: Built):
    """pyproject's version is the one source; the spec and its changelog must follow it."""
    spec = SPEC.read_text()
    assert re.search(r"^Version:\s*(\S+)$", spec, re.M).group(1) == VERSION
    changelog = spec.split("%changelog", 1)[1].strip().splitlines()[0]
    assert changelog.endswith(f" - {VERSION}-1"), changelog
    assert query(built.rpm, "--qf", "%{VERSION} %{ARCH}") == [f"{VERSION} noarch"]
    assert hpcperf_monitor.__version__ == VERSION


def test_files_modes_and_config(built: Built):
    entries = dict(reversed(line.split(" ", 1)) for line in
                   query(built.rpm, "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"))
    assert entries["/usr/bin/hpcperf-monitor"] == "-rwxr-xr-x"
    assert entries["/usr/lib/systemd/system/hpcperf-monitor.service"] == "-rw-r--r--"
    assert entries["/etc/hpcperfstats/monitor.conf"] == "-rw-r--r--"
    assert entries["/usr/libexec/hpcperf-monitor/prolog.sh"] == "-rwxr-xr-x"
    assert entries["/usr/libexec/hpcperf-monitor/epilog.sh"] == "-rwxr-xr-x"
    assert entries["/var/lib/hpcperfstats"] == "drwxr-xr-x"  # monitor.conf's state_dir
    sites = {p.rsplit("/hpcperf_monitor/", 1)[0] for p in entries if "/hpcperf_monitor/" in p}
    assert len(sites) == 1 and SITE.match(site := sites.pop()), sites
    for module in ("cli.py", "collectors/__init__.py", "collectors/cpu.py"):
        assert f"{site}/hpcperf_monitor/{module}" in entries
    assert f"{site}/hpcperf_monitor-{VERSION}.egg-info/entry_points.txt" in entries
    assert query(built.rpm, "-c") == ["/etc/hpcperfstats/monitor.conf"]
    flags = query(built.rpm, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    assert "cn /etc/hpcperfstats/monitor.conf" in flags  # %config(noreplace)


def test_requires(built: Built):
    requires = query(built.rpm, "-R")
    assert "python3-pika" in requires
    assert "python3 >= 3.9" in requires
    assert not [r for r in requires if "dist(pika)" in r]  # no pin on EPEL's pika


def test_script_wrapper_matches_entry_point():
    """The spec writes /usr/bin/hpcperf-monitor itself; it must call pyproject's entry point."""
    assert PYPROJECT["project"]["scripts"] == {"hpcperf-monitor": "hpcperf_monitor.cli:main"}
    assert "from hpcperf_monitor.cli import main" in SPEC.read_text()


def test_packaged_monitor_runs(payload: Path, tmp_path: Path):
    (site,) = [p for p in payload.glob("usr/lib/python3*/site-packages")]
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = run(sys.executable, "-c",
                "import importlib.metadata as m, hpcperf_monitor.cli as c; "
                "print(c.__file__); print(m.version('hpcperf-monitor')); "
                "print(m.distribution('hpcperf-monitor').locate_file(''))", env=env)
    assert probe.returncode == 0, probe.stderr
    module, version, located = probe.stdout.splitlines()
    assert Path(module).is_relative_to(site)  # the packaged copy, not the checkout's
    assert (version, Path(located)) == (VERSION, site)
    script = payload / "usr" / "bin" / "hpcperf-monitor"
    assert script.read_text().startswith(f"#!{sys.executable} -s\n")
    result = run(sys.executable, script, "--once", "--stdout", "--root", NODETREE,
                 "--config", payload / "etc" / "hpcperfstats" / "monitor.conf",
                 "--state-dir", tmp_path / "state", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("$tacc_stats "), result.stdout[:200]
    raw = read_raw(result.stdout, source="rpm")
    assert raw.issues == [] and len(raw.headers) == 1 and len(raw.samples) == 1
    assert "cpu" in raw.samples[0].rows
