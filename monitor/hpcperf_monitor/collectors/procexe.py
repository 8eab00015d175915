"""Executable and CPU time of user processes: what application detection needs.

``proc`` (TACC's type) gives only the 15-character process name. This type
adds, per process, the path of ``/proc/<pid>/exe`` (percent-encoded into the
device, ``<pid>/<path>``, because a path may hold blanks and any byte) and the
user and system CPU time of ``/proc/<pid>/stat`` in centiseconds.

The cost per sample is bounded: kernel threads (``PF_KTHREAD``) and root's
processes are skipped from one read of ``stat`` each, as ``proc`` skips
them; of the rest, only the :data:`MAX_PROCS` with the most CPU time get the
``readlink`` and a row, so a node running thousands of tiny processes writes
at most that many lines.
"""

from __future__ import annotations

import os
from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.rawformat import procexe_device
from hpcperf_monitor.schemas import PROCEXE

TYPE = PROCEXE.type
#: at most this many processes per sample (the busiest by CPU time)
MAX_PROCS = 256
PF_KTHREAD = 0x00200000
try:
    _TICKS = os.sysconf("SC_CLK_TCK")
except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
    _TICKS = 100


def parse_stat(text: str) -> tuple[int, int, int] | None:
    """``(flags, utime, stime)`` in clock ticks from ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may itself hold blanks
    and parentheses, so the fields are counted from the last ``)``. None for
    a text that is not a stat line (a process caught half-exited).
    """
    rest = text[text.rfind(")") + 1:].split()
    if len(rest) < 13:
        return None
    try:
        return int(rest[6]), int(rest[11]), int(rest[12])
    except ValueError:
        return None


def centiseconds(ticks: int, hz: int = _TICKS) -> int:
    """Clock ticks (USER_HZ, 100 on Linux) as centiseconds, the schema's unit."""
    return ticks if hz == 100 else ticks * 100 // hz


def collect(root: Path = Path("/"), limit: int = MAX_PROCS) -> Rows:
    base = root / "proc"
    try:
        pids = [n for n in os.listdir(base) if n.isdigit()]
    except OSError as exc:
        raise CollectorUnavailable(f"{base}: {exc.strerror or exc}") from None
    found: list[tuple[int, int, int, int]] = []  # (cpu, pid, utime, stime)
    for pid in pids:
        path = base / pid
        try:
            if os.stat(path).st_uid == 0:
                continue
            parsed = parse_stat((path / "stat").read_text())
        except OSError:
            continue  # exited meanwhile, or no stat in a recorded tree
        if parsed is None or parsed[0] & PF_KTHREAD:
            continue
        _, utime, stime = parsed
        found.append((utime + stime, int(pid), utime, stime))
    found.sort(key=lambda f: (-f[0], f[1]))
    rows: Rows = {}
    for _, pid, utime, stime in found[:limit]:
        try:
            exe = os.readlink(os.fsencode(base / str(pid) / "exe"))
        except OSError:
            continue  # exited, or not ours to read
        rows[procexe_device(pid, exe)] = (centiseconds(utime), centiseconds(stime))
    if not rows:
        raise CollectorUnavailable(f"{base}: no user processes with a readable exe")
    return rows
