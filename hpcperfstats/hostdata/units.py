"""Unit conversion from the schema's ``U=<mult><unit>`` to SI units.

Units always come from the schema (DESIGN.md: never hard-coded per event):
``U=512B`` on a sector counter becomes bytes, ``U=cs`` jiffies become
seconds, so a CPU-time rate reads directly as cores busy.
"""

from __future__ import annotations

# unit as written after the multiplier -> (factor to SI, SI unit)
_SI: dict[str, tuple[float, str]] = {
    "B": (1.0, "B"),
    "KB": (1024.0, "B"),
    "kB": (1024.0, "B"),
    "KiB": (1024.0, "B"),
    "MB": (1024.0**2, "B"),
    "MiB": (1024.0**2, "B"),
    "GB": (1024.0**3, "B"),
    "GiB": (1024.0**3, "B"),
    "s": (1.0, "s"),
    "cs": (0.01, "s"),
    "ms": (1e-3, "s"),
    "us": (1e-6, "s"),
    "ns": (1e-9, "s"),
    "J": (1.0, "J"),
    "mJ": (1e-3, "J"),
    "uJ": (1e-6, "J"),
    "W": (1.0, "W"),
    "mW": (1e-3, "W"),
    "uW": (1e-6, "W"),
    "Hz": (1.0, "Hz"),
    "kHz": (1e3, "Hz"),
    "MHz": (1e6, "Hz"),
}


def to_si(unit: str | None, multiplier: int = 1) -> tuple[float, str]:
    """Factor and SI unit for a schema unit; unknown units pass through as-is."""
    if unit is None:
        return float(multiplier), ""
    factor, si = _SI.get(unit, (1.0, unit))
    return factor * multiplier, si


def rate_unit(si_unit: str) -> str:
    """Unit of a per-second rate of a counter measured in ``si_unit``."""
    return f"{si_unit}/s" if si_unit else "1/s"
