"""InfiniBand and Omni-Path port counters from ``/sys/class/infiniband``.

Three types share this reader, one per kind of counter, so each column's
width is right in the schema:

- ``ib_ext``: 64-bit counters. Since Linux 4.5 the kernel's ``counters/``
  files are the 64-bit PortCountersExtended ones whenever the HCA supports
  them (every ConnectX-4 and later); the kernel then also creates
  ``unicast_xmit_packets`` and friends, which is how we tell. HCAs that
  have extended counters without the IETF ones get the same 64-bit
  ``port_*`` files but no ``unicast_*``: a value above 2^32 - 1 proves
  those are 64-bit too. Old vendor stacks put them in ``counters_ext/*_64``.
- ``ib``: the legacy 32-bit ``counters/`` (``W=32``), only for ports with
  none of the above. They saturate at 2^32 - 1 rather than wrap, so rates
  from them are lower bounds;
- ``opa``: Omni-Path HFIs (``hfi1_*``), whose ``counters/`` are 64-bit.

Data counters count 4-byte words (``U=4B``). Every read is a firmware
query on the HCA, so only the counters we use are read.
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


_LEGACY_MAX = (1 << 32) - 1


def _read(directory: Path, names: tuple[str, ...]) -> tuple[int, ...]:
    values = []
    for name in names:
        try:
            values.append(int((directory / name).read_bytes()))
        except (OSError, ValueError):
            values.append(0)
    return tuple(values)


def read_port(device: str, port: Path, kind: str) -> tuple[int, ...] | None:
    """The port's values if its counters are of type ``kind``, else None.

    Ports whose type shows in their files are read only for that type; a
    port with bare ``counters/`` is read to see whether a value proves them
    64-bit (extended counters without the IETF set).
    """
    if device.startswith("hfi1"):
        return _read(port / "counters", _LEGACY) if kind == "opa" else None
    if (port / "counters_ext").is_dir():
        return _read(port / "counters_ext", _EXT) if kind == "ib_ext" else None
    if (port / "counters/unicast_xmit_packets").exists():
        return _read(port / "counters", _LEGACY) if kind == "ib_ext" else None
    if kind == "opa":
        return None
    values = _read(port / "counters", _LEGACY)
    wide = max(values) > _LEGACY_MAX
    return values if wide == (kind == "ib_ext") else None


def collect_kind(root: Path, kind: str) -> Rows:
    rows: Rows = {}
    for device, port in _ports(root):
        values = read_port(device, port, kind)
        if values is not None:
            rows[device] = values
    if not rows:
        raise CollectorUnavailable(f"{root / 'sys/class/infiniband'}: no {kind} ports")
    return rows
