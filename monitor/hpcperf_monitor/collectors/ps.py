"""Process and load counters from ``/proc/stat`` and ``/proc/loadavg``.

One row under device ``-``, as TACC's monitor writes it. Load averages are
written as integers times 100 (``8.55`` -> ``855``), also as TACC does, so
every value in a sample stays an integer.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import PS

TYPE = PS.type


def _centi(text: str) -> int:
    """``"8.55"`` -> 855 without float rounding surprises."""
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def collect(root: Path = Path("/")) -> Rows:
    stat: dict[str, int] = {}
    for line in read_text(root / "proc/stat").splitlines():
        if line.startswith(("ctxt ", "processes ")):
            key, value = line.split()[:2]
            stat[key] = int(value)
    words = read_text(root / "proc/loadavg").split()
    if len(words) < 4 or "/" not in words[3] or len(stat) < 2:
        raise CollectorUnavailable(f"{root / 'proc'}: unexpected stat/loadavg format")
    running, _, threads = words[3].partition("/")
    return {
        "-": (
            stat["ctxt"], stat["processes"],
            _centi(words[0]), _centi(words[1]), _centi(words[2]),
            int(running), int(threads),
        )
    }
