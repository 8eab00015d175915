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

A value that cannot be read is absent, never 0 (DESIGN.md). With
``JobAcctGatherType=jobacct_gather/linux`` Slurm makes the job's memory
cgroup but no ``cpuacct`` one: such a job's row goes to type ``cgroup_mem``
(no CPU event), and a job with CPU but no memory cgroup to ``cgroup_cpu``,
so the pipeline falls back to node counters for what is missing instead of
reading a zero as "idle".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.schemas import CGROUP, CGROUP_MEM

TYPE = CGROUP.type
#: hints about the Slurm settings found by this process, and those handed out
_HINTED: dict[str, str] = {}
_SAID: set[str] = set()
_V2_GLOBS = (
    "system.slice/*slurmstepd.scope/job_*",
    "slurm*/job_*",
    "slurm*/uid_*/job_*",
)
_V1_CPU = ("cpuacct", "cpu,cpuacct")
_V1_GLOBS = ("slurm*/uid_*/job_*", "slurm*/job_*")


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


def _v2(base: Path) -> Scan:
    full: dict[str, tuple[int, ...]] = {}
    no_cpu: dict[str, tuple[int, ...]] = {}
    for key, path in _job_dirs(base, _V2_GLOBS).items():
        cpu_usec = None
        try:
            for line in (path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    cpu_usec = int(line.split()[1])
        except (OSError, ValueError):
            pass
        current = _int(path / "memory.current", 0)
        peak = _int(path / "memory.peak", current)
        mem_io = (current, peak, *_v2_io(path / "io.stat"))
        if cpu_usec is None:  # unreadable CPU is absent, never 0
            no_cpu[key] = mem_io
        else:
            full[key] = (cpu_usec, *mem_io)
    return Scan(full, no_cpu, {}, bool(full or no_cpu) or _v2_slurm(base))


def _v2_slurm(base: Path) -> bool:
    return any(any(base.glob(p.rsplit("/", 1)[0])) for p in _V2_GLOBS)


def _v1(base: Path) -> Scan:
    cpu_dirs: dict[str, Path] = {}
    for name in _V1_CPU:
        cpu_dirs.update(_job_dirs(base / name, _V1_GLOBS))
    mem_dirs = _job_dirs(base / "memory", _V1_GLOBS)
    io_dirs = _job_dirs(base / "blkio", _V1_GLOBS)
    full: dict[str, tuple[int, ...]] = {}
    no_cpu: dict[str, tuple[int, ...]] = {}
    no_mem: dict[str, tuple[int, ...]] = {}
    for key in sorted(set(cpu_dirs) | set(mem_dirs)):
        io = _v1_io(io_dirs[key] / "blkio.throttle.io_service_bytes") if key in io_dirs else (0, 0)
        cpu_ns = _int(cpu_dirs[key] / "cpuacct.usage") if key in cpu_dirs else None
        mem = mem_dirs.get(key)
        current = _int(mem / "memory.usage_in_bytes") if mem else None
        peak = _int(mem / "memory.max_usage_in_bytes", current) if mem else None
        if cpu_ns is not None and current is not None:
            full[key] = (cpu_ns // 1000, current, peak or current, *io)
        elif current is not None:  # jobacct_gather/linux: no cpuacct job directory
            no_cpu[key] = (current, peak or current, *io)
        elif cpu_ns is not None:
            no_mem[key] = (cpu_ns // 1000, *io)
    slurm = any(any((base / c).glob("slurm*")) for c in (*_V1_CPU, "memory"))
    return Scan(full, no_cpu, no_mem, slurm)


class Scan(NamedTuple):
    """Job rows by what could be read: all, all but CPU, all but memory."""

    full: dict[str, tuple[int, ...]]
    no_cpu: dict[str, tuple[int, ...]]
    no_mem: dict[str, tuple[int, ...]]
    slurm: bool  # Slurm made a cgroup hierarchy at all


def _hint_once(key: str, message: str, *args: object) -> None:
    if key not in _HINTED:
        _HINTED[key] = message % args


def new_hints() -> list[str]:
    """Hints about the node's Slurm cgroup settings not handed out before.

    The daemon logs each once at INFO; one-shot runs (prolog, epilog) do not
    call this, so a node's log gets the hint once, not at every job.
    """
    out = [text for key, text in _HINTED.items() if key not in _SAID]
    _SAID.update(_HINTED)
    return out


def scan(root: Path = Path("/")) -> Scan:
    """The node's Slurm job cgroups, split by which controllers had the job.

    Raises :class:`CollectorUnavailable` only when the node has no cgroup
    file system; with one but no jobs the rows are empty, so the type stays
    in the header while jobs come and go (no header at each job boundary).
    """
    base = root / "sys/fs/cgroup"
    if (base / "cgroup.controllers").exists():
        found = _v2(base)
    elif any((base / c).is_dir() for c in (*_V1_CPU, "memory")):
        found = _v1(base)
    else:
        raise CollectorUnavailable(f"{base}: no cgroup file system")
    if not found.slurm:
        _hint_once("none", "no Slurm job cgroups under %s: per-job CPU and memory need "
                   "ProctrackType=proctrack/cgroup, TaskPlugin=task/cgroup (cgroup.conf "
                   "ConstrainRAMSpace=yes) and JobAcctGatherType=jobacct_gather/cgroup; "
                   "until then jobs read node totals, shared with other jobs", base)
    if found.no_cpu:
        _hint_once("cpu", "job cgroups without CPU accounting (%s): JobAcctGatherType="
                   "jobacct_gather/linux makes no cpuacct job directory; their CPU is left "
                   "out (type %s), never written as 0", " ".join(sorted(found.no_cpu)),
                   CGROUP_MEM.type)
    return found


def _renamed(rows: dict[str, tuple[int, ...]], jobmap: Mapping[str, str] | None) -> Rows:
    jobmap = jobmap or {}
    return {jobmap.get(key, key): values for key, values in rows.items()}


def collect(root: Path = Path("/"), jobmap: Mapping[str, str] | None = None) -> Rows:
    """Rows per job id of jobs whose CPU and memory both were read; ``jobmap``
    renames directory ids (array tasks)."""
    return _renamed(scan(root).full, jobmap)


def collect_mem(root: Path = Path("/"), jobmap: Mapping[str, str] | None = None) -> Rows:
    """``cgroup_mem`` rows: jobs with a memory cgroup but no readable CPU time."""
    return _renamed(scan(root).no_cpu, jobmap)


def collect_cpu(root: Path = Path("/"), jobmap: Mapping[str, str] | None = None) -> Rows:
    """``cgroup_cpu`` rows: jobs with a CPU cgroup but no memory cgroup."""
    return _renamed(scan(root).no_mem, jobmap)
