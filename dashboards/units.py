"""Human units for stored values.

The database stores SI base units (``B``, ``B/s``, ``s``, fractions as ``1``)
so that sums and ratios stay simple; people read GiB, MB/s, percent and
hours. Memory uses binary prefixes (it is allocated in GiB), bandwidth
decimal ones (that is how networks and disks are rated).
"""

from __future__ import annotations

import math

_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
_DECIMAL_RATE = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"]

# How each stored unit is drawn on a plot axis: (divide by, axis unit).
_PLOT_SCALE: dict[str, tuple[float, str]] = {
    "B": (2.0**30, "GiB"),
    "B/s": (1e6, "MB/s"),
    "cores": (1.0, "cores"),
    "s/s": (1.0, "cores"),
    "1": (0.01, "%"),
}


def _scaled(value: float, base: float, names: list[str]) -> str:
    index = 0
    while abs(value) >= base and index < len(names) - 1:
        value /= base
        index += 1
    digits = 0 if index == 0 else (2 if abs(value) < 10 else 1)
    return f"{value:.{digits}f} {names[index]}"


def duration(seconds: float | None) -> str:
    """``3h 05m`` style; days for long jobs, seconds only for short ones."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def human(value: float | None, unit: str | None) -> str:
    """A stored value with its unit, as a person would write it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    unit = unit or ""
    if unit == "B":
        return _scaled(float(value), 1024.0, _BINARY)
    if unit == "B/s":
        return _scaled(float(value), 1000.0, _DECIMAL_RATE)
    if unit == "1":
        return f"{100.0 * value:.1f} %"
    if unit == "s":
        return duration(value)
    if unit in ("cores", "s/s"):
        return f"{value:.2f} cores"
    return f"{value:.4g} {unit}".rstrip()


def plot_scale(unit: str | None) -> tuple[float, str]:
    """Divisor and axis label that put a stored unit on a readable scale."""
    return _PLOT_SCALE.get(unit or "", (1.0, unit or ""))
