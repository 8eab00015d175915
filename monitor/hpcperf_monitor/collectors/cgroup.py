"""Per-job usage from Slurm's job cgroups: CPU time, memory, I/O bytes.

This is what keeps jobs that share a node apart. cgroup v2 is tried first
(``cgroup.controllers`` at the mount), under Slurm's layouts:

- ``system.slice/slurmstepd.scope/job_<id>`` (Slurm 22.05+),
- ``system.slice/<node>_slurmstepd.scope/job_<id>`` (several slurmds per host),
- ``slurm/job_<id>`` and ``slurm/uid_<uid>/job_<id>`` (older or custom).

cgroup v1 keeps one tree per controller: ``cpuacct/slurm/uid_<u>/job_<id>``,
``memory/...`` and ``blkio/...``. Directories are keyed by Slurm's numeric
job id; an array task (``1234_7``) or a site whose layout names the
directory by another id is mapped back with the ``{dir id: job id}`` map the
prolog leaves in the state directory (``--begin 1234_7 --cgroup-id 1240``).
A missing ``memory.peak`` (kernels before 5.19) reads as the current value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.schemas import CGROUP

TYPE = CGROUP.type
_V2_GLOBS = (
    "system.slice/*slurmstepd.scope/job_*",
    "slurm*/job_*",
    "slurm*/uid_*/job_*",
)
_V1_CPU = ("cpuacct", "cpu,cpuacct")


def _int(path: Path, default: int | None = None) -> int | None:
    try:
        return int(path.read_bytes().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _v2_io(path: Path) -> tuple[int, int]:
    """``MAJ:MIN rbytes=N wbytes=N ...`` lines of ``io.stat``, summed over devices."""
    read = write = 0
    try:
        text = path.read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def _v1_io(path: Path) -> tuple[int, int]:
    """``MAJ:MIN Read N`` lines of ``blkio.throttle.io_service_bytes`` (no ``Total``)."""
    read = write = 0
    try:
        text = path.read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] == "Read":
            read += int(words[2])
        elif len(words) == 3 and words[1] == "Write":
            write += int(words[2])
    return read, write


def _job_dirs(base: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pattern in patterns:
        for path in sorted(base.glob(pattern)):
            key = path.name[len("job_"):]
            if path.is_dir() and key not in found:
                found[key] = path
    return found


def _v2(base: Path) -> dict[str, tuple[int, ...]]:
    rows = {}
    for key, path in _job_dirs(base, _V2_GLOBS).items():
        cpu_usec = 0
        try:
            for line in (path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    cpu_usec = int(line.split()[1])
        except OSError:
            pass
        current = _int(path / "memory.current", 0)
        peak = _int(path / "memory.peak", current)
        rows[key] = (cpu_usec, current, peak, *_v2_io(path / "io.stat"))
    return rows


def _v1(base: Path) -> dict[str, tuple[int, ...]]:
    cpu_dirs: dict[str, Path] = {}
    for name in _V1_CPU:
        cpu_dirs.update(_job_dirs(base / name, ("slurm*/uid_*/job_*", "slurm*/job_*")))
    mem_dirs = _job_dirs(base / "memory", ("slurm*/uid_*/job_*", "slurm*/job_*"))
    io_dirs = _job_dirs(base / "blkio", ("slurm*/uid_*/job_*", "slurm*/job_*"))
    rows = {}
    for key in sorted(set(cpu_dirs) | set(mem_dirs)):
        cpu_ns = _int(cpu_dirs[key] / "cpuacct.usage", 0) if key in cpu_dirs else 0
        mem = mem_dirs.get(key)
        current = _int(mem / "memory.usage_in_bytes", 0) if mem else 0
        peak = _int(mem / "memory.max_usage_in_bytes", current) if mem else 0
        io = _v1_io(io_dirs[key] / "blkio.throttle.io_service_bytes") if key in io_dirs else (0, 0)
        rows[key] = (cpu_ns // 1000, current, peak, *io)
    return rows


def collect(root: Path = Path("/"), jobmap: Mapping[str, str] | None = None) -> Rows:
    """Rows per job id; ``jobmap`` renames directory ids (array tasks)."""
    base = root / "sys/fs/cgroup"
    rows = _v2(base) if (base / "cgroup.controllers").exists() else _v1(base)
    if not rows:
        raise CollectorUnavailable(f"{base}: no Slurm job cgroups")
    jobmap = jobmap or {}
    return {jobmap.get(key, key): values for key, values in rows.items()}
