"""RAPL package and DRAM energy from ``/sys/class/powercap/intel-rapl:*``.

The kernel's ``energy_uj`` wraps at ``max_energy_range_uj`` (about 262 kJ
on many CPUs: minutes at full power), more often than a 300 s interval can
tell apart. The monitor therefore unwraps it: each zone's last raw value and
running total are kept in ``rapl.json`` in the host's state directory, and
the sample carries the total, a monotonic 64-bit counter. The state is
updated on every read, by the daemon and by prolog/epilog runs alike; a
reading taken more than one wrap after the last is undercounted, which is
why the daemon samples at least every interval. ``energy_uj`` is readable
by root only on recent kernels: unreadable means unavailable.
Device: the package number of the ``package-N`` zone; its ``dram`` subzone
gives ``dram_energy`` (0 where the CPU has none).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.state import atomic_write

TYPE = "rapl"
log = logging.getLogger(__name__)


def _read(path: Path) -> str:
    return path.read_text().strip()


def zones(root: Path) -> dict[str, dict[str, Path]]:
    """``{package: {"package": zone dir, "dram": zone dir}}``."""
    out: dict[str, dict[str, Path]] = {}
    for top in sorted((root / "sys/class/powercap").glob("intel-rapl:*")):
        if top.name.count(":") != 1:
            continue
        try:
            name = _read(top / "name")
        except OSError:
            continue
        if not name.startswith("package-"):
            continue
        pkg = name.split("-", 1)[1]
        found = {"package": top}
        for sub in sorted(top.glob(f"{top.name}:*")):
            try:
                if _read(sub / "name") == "dram":
                    found["dram"] = sub
            except OSError:
                continue
        out[pkg] = found
    return out


def unwrap(last: dict | None, raw: int, max_range: int) -> dict:
    """The zone's new ``{"raw", "total"}`` after reading ``raw``."""
    if last is None:
        return {"raw": raw, "total": raw}
    delta = raw - last["raw"]
    if delta < 0:
        delta += max_range
    return {"raw": raw, "total": last["total"] + delta}


class Rapl:
    """Unwraps the energy counters; state in ``state_dir/rapl.json`` when given."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.path = Path(state_dir) / "rapl.json" if state_dir else None
        self.state: dict[str, dict] = {}
        if self.path is not None:
            try:
                self.state = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.state = {}

    def _energy(self, zone: Path) -> int:
        raw = int(_read(zone / "energy_uj"))
        max_range = int(_read(zone / "max_energy_range_uj"))
        key = str(zone.name)
        self.state[key] = unwrap(self.state.get(key), raw, max_range)
        return self.state[key]["total"]

    def __call__(self, root: Path) -> Rows:
        found = zones(root)
        if not found:
            raise CollectorUnavailable(f"{root / 'sys/class/powercap'}: no RAPL packages")
        if self.path is not None:  # reload: a prolog run may have read since
            try:
                self.state = json.loads(self.path.read_text())
            except (OSError, ValueError):
                pass
        rows: Rows = {}
        try:
            for pkg, parts in found.items():
                dram = self._energy(parts["dram"]) if "dram" in parts else 0
                rows[pkg] = (self._energy(parts["package"]), dram)
        except (OSError, ValueError) as exc:
            raise CollectorUnavailable(f"RAPL energy unreadable: {exc}") from None
        if self.path is not None:
            try:
                atomic_write(self.path, json.dumps(self.state).encode())
            except OSError as exc:
                log.warning("RAPL state %s not saved: %s", self.path, exc)
        return rows


def collect(root: Path = Path("/")) -> Rows:
    """One reading without saved state (the total starts at the raw value)."""
    return Rapl()(root)
