"""The layout of the design card, and what a production install carries.

- `pyproject.toml` lists its packages (the top-level `assets/` folder installs
  as `hpcperf_assets`), so the list must equal the folders on disk, or a
  wheel silently misses a new subpackage.
- The pipeline's wheel carries no package called plain `assets` and no demo;
  its data files (flag rules, the login page) are in it.
- The core (`hpcperfstats`) imports none of the packages built on it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"hpcperfstats": "hpcperfstats", "hpcperf_dagster": "hpcperf_dagster",
           "dashboards": "dashboards", "assets": "hpcperf_assets"}


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    return found


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _packages_on_disk()
    assert config["package-dir"] == {"hpcperf_assets": "assets"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    # Built from a copy: an in-tree build would leave build/ in the checkout.
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    (path,) = out.glob("hpcperfstats-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_hpcperf_assets_no_plain_assets_and_no_demo(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {"hpcperfstats", "hpcperf_dagster", "hpcperf_assets", "dashboards"} <= tops
    assert "assets" not in tops
    assert not any(top.startswith("hpcperf_demo") for top in tops)
    names = set(wheel.namelist())
    assert "hpcperf_assets/host_data.py" in names
    assert "hpcperfstats/flags/job_flags.yaml" in names
    assert "dashboards/login.html" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    commands = wheel.read(entry).decode()
    assert "web = dashboards.serve:main" in commands and "demo =" not in commands


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module"):
            names.add("<string import>")
    return names


def test_core_imports_nothing_built_on_it():
    above = {"dashboards", "hpcperf_dagster", "hpcperf_assets", "hpcperf_demo", "assets",
             "<string import>"}
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & above)
                 for p in (ROOT / "hpcperfstats").rglob("*.py") if _imports(p) & above}
    assert offenders == {}


def test_cli_lists_commands_from_entry_points():
    out = subprocess.run([sys.executable, "-m", "hpcperfstats.cli", "--help"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    for name in ("db", "job", "import-archive", "web", "user", "demo", "generate-demo"):
        assert f"\n  {name} " in out
    bad = subprocess.run([sys.executable, "-m", "hpcperfstats.cli", "nonsense"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown command 'nonsense'" in bad.stderr
