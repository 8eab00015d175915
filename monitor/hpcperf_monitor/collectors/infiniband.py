"""InfiniBand and Omni-Path port counters from ``/sys/class/infiniband``.

Three types share this reader, one per kind of counter, so each column's
width is right in the schema:

- ``ib_ext``: the 64-bit ``counters_ext/*_64`` files, where the driver has them;
- ``ib``: the legacy ``counters/`` files (``W=32``), only for ports without
  ``counters_ext``. They saturate on old HCAs rather than wrap, so rates
  from them are lower bounds;
- ``opa``: Omni-Path HFIs (``hfi1_*``), whose ``counters/`` are 64-bit.

Data counters count 4-byte words (``U=4B``). Every read is a firmware
query on the HCA, so only the four counters we use are read.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows

_LEGACY = ("port_xmit_data", "port_rcv_data", "port_xmit_packets", "port_rcv_packets")
_EXT = tuple(f"{name}_64" for name in _LEGACY)


def _ports(root: Path) -> list[tuple[str, Path]]:
    """``(hca.port, port dir)`` for every port, sorted."""
    base = root / "sys/class/infiniband"
    try:
        hcas = sorted(base.iterdir())
    except OSError:
        return []
    out = []
    for hca in hcas:
        try:
            ports = sorted((hca / "ports").iterdir(), key=lambda p: (len(p.name), p.name))
        except OSError:
            continue
        out.extend((f"{hca.name}.{port.name}", port) for port in ports)
    return out


def _read(directory: Path, names: tuple[str, ...], mask: int) -> tuple[int, ...]:
    values = []
    for name in names:
        try:
            values.append(int((directory / name).read_bytes()) & mask)
        except (OSError, ValueError):
            values.append(0)
    return tuple(values)


def _kind(device: str, port: Path) -> str:
    if device.startswith("hfi1"):
        return "opa"
    return "ib_ext" if (port / "counters_ext").is_dir() else "ib"


def collect_kind(root: Path, kind: str) -> Rows:
    rows: Rows = {}
    for device, port in _ports(root):
        if _kind(device, port) != kind:
            continue
        if kind == "ib_ext":
            rows[device] = _read(port / "counters_ext", _EXT, (1 << 64) - 1)
        else:
            mask = (1 << 32) - 1 if kind == "ib" else (1 << 64) - 1
            rows[device] = _read(port / "counters", _LEGACY, mask)
    if not rows:
        raise CollectorUnavailable(f"{root / 'sys/class/infiniband'}: no {kind} ports")
    return rows
