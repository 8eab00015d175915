"""Memory and threads of user processes from ``/proc/<pid>/status``.

As TACC's monitor does, every process not owned by root is reported:
on a compute node those are the jobs' processes (plus a few daemons such
as ``nslcd``, which cost one row each). The owner is the real uid of the
``Uid:`` line (a recorded tree keeps no file owners).
Kernel threads have no ``VmSize`` and are skipped. The device is
``<name>/<pid>/<Cpus_allowed_list>/<Mems_allowed_list>``, with spaces and
slashes in the name replaced by ``_`` so the device stays one token.
"""

from __future__ import annotations

import os
from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.schemas import PROC

TYPE = PROC.type
_VM = PROC.names[1:-1]  # VmPeak .. VmSwap


def parse_status(text: str) -> tuple[str, str, tuple[int, ...]] | None:
    """``(name, "cpus/mems", values)`` of one status file; None for kernel threads."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    if "VmSize" not in fields:
        return None
    name = "_".join(fields.get("Name", "?").replace("/", "_").split()) or "?"
    cpus = fields.get("Cpus_allowed_list", "-") or "-"
    mems = fields.get("Mems_allowed_list", "-") or "-"
    uid = int(fields.get("Uid", "0").split()[0])
    vm = tuple(int(fields.get(k, "0 kB").split()[0]) for k in _VM)
    return name, f"{cpus}/{mems}", (uid, *vm, int(fields.get("Threads", "0")))


def collect(root: Path = Path("/")) -> Rows:
    base = root / "proc"
    try:
        pids = sorted((n for n in os.listdir(base) if n.isdigit()), key=int)
    except OSError as exc:
        raise CollectorUnavailable(f"{base}: {exc.strerror or exc}") from None
    rows: Rows = {}
    for pid in pids:
        path = base / pid
        try:
            parsed = parse_status((path / "status").read_text())
        except OSError:
            continue  # the process exited meanwhile
        if parsed is not None and parsed[2][0] != 0:
            name, placement, values = parsed
            rows[f"{name}/{pid}/{placement}"] = values
    if not rows:
        raise CollectorUnavailable(f"{base}: no user processes")
    return rows
