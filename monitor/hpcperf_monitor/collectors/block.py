"""Whole-disk I/O counters from ``/proc/diskstats``.

Partitions are skipped (their I/O is already in the disk's row), and so are
``loop``, ``ram`` and ``zram`` devices, which are memory, not storage.
Whole disks are taken from ``/sys/block`` when the tree has it (the kernel's
own list); otherwise a device is a partition when its name is another
listed device's name plus digits (``sda1``) or plus ``p`` and digits
(``nvme0n1p1``, ``mmcblk0p2``). The millisecond fields are 32-bit in the
kernel; they are masked to 32 bits so a wider value never reaches a
``W=32`` column.
"""

from __future__ import annotations

from pathlib import Path

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows, read_text
from hpcperf_monitor.schemas import BLOCK

TYPE = BLOCK.type
_N = len(BLOCK.events)
_MASKS = tuple((1 << (e.width or 64)) - 1 for e in BLOCK.events)
_SKIP_PREFIXES = ("loop", "ram", "zram")


def is_partition(name: str, names: set[str]) -> bool:
    """``sda1`` of ``sda``, ``nvme0n1p2`` of ``nvme0n1``: judged by name alone."""
    stem = name.rstrip("0123456789")
    if stem == name:
        return False
    if stem in names:
        return True
    return stem.endswith("p") and stem[:-1] in names and stem[-2:-1].isdigit()


def _whole_disks(root: Path, names: set[str]) -> set[str]:
    try:
        return {p.name for p in (root / "sys/block").iterdir()} & names
    except OSError:
        return {n for n in names if not is_partition(n, names)}


def collect(root: Path = Path("/")) -> Rows:
    parsed: dict[str, list[str]] = {}
    for line in read_text(root / "proc/diskstats").splitlines():
        words = line.split()
        if len(words) >= 3 + _N and not words[2].startswith(_SKIP_PREFIXES):
            parsed[words[2]] = words[3:3 + _N]
    disks = _whole_disks(root, set(parsed))
    if not disks:
        raise CollectorUnavailable(f"{root / 'proc/diskstats'}: no whole disks")
    return {
        name: tuple(int(v) & _MASKS[i] for i, v in enumerate(values))
        for name, values in parsed.items() if name in disks
    }
