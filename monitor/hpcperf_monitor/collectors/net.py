"""Interface counters from ``/sys/class/net/<iface>/statistics/*``.

Every interface is reported, ``lo`` included (TACC does too: loopback
traffic shows MPI or I/O going through the local stack). A counter file a
driver does not provide reads as 0.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.schemas import NET

TYPE = NET.type


def _read(path: Path) -> int:
    try:
        return int(path.read_bytes())
    except (OSError, ValueError):
        return 0  # missing file, or a driver that returns an error on read


def collect(root: Path = Path("/")) -> Rows:
    base = root / "sys/class/net"
    try:
        ifaces = sorted(p for p in base.iterdir() if (p / "statistics").is_dir())
    except OSError as exc:
        raise CollectorUnavailable(f"{base}: {exc.strerror or exc}") from None
    if not ifaces:
        raise CollectorUnavailable(f"{base}: no interfaces with statistics")
    return {
        p.name: tuple(_read(p / "statistics" / name) for name in NET.names) for p in ifaces
    }
