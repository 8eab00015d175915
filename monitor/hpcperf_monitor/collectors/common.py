"""Helpers shared by the collectors: reading a source and turning it into rows.

Every collector reads files under a ``root`` so tests can point it at a
recorded tree; when its source is missing it raises
:class:`CollectorUnavailable` and the sampler leaves that type out of the
header instead of writing zeros that look like data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

#: ``{device: values in schema order}``, what every collector returns.
Rows = dict[str, tuple[int, ...]]  # PEP 585 generics: fine at runtime on 3.9


class CollectorUnavailable(Exception):
    """The collector's source does not exist on this node (or in this tree)."""


def read_text(path: Path) -> str:
    """The file's text; a missing or unreadable source is 'unavailable'."""
    try:
        return path.read_text()
    except OSError as exc:
        raise CollectorUnavailable(f"{path}: {exc.strerror or exc}") from None


def key_values(text: str, skip: int = 0) -> dict[str, str]:
    """``key value`` lines as a dict, after dropping ``skip`` leading words.

    ``/proc/vmstat`` and ``numastat`` need ``skip=0``; the per-node meminfo
    lines start with ``Node <n>`` and need ``skip=2``. A trailing ``:`` on the
    key and a unit after the value (``kB``) are ignored.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < skip + 2:
            continue
        out[words[skip].rstrip(":")] = words[skip + 1]
    return out


def pick(values: Mapping[str, str], names: Iterable[str]) -> tuple[int, ...]:
    """Values of ``names`` in order; a key this kernel lacks reads as 0.

    Kernels add and drop keys between releases (``NFS_Unstable`` went away
    in 5.8); a missing key must not make the whole type disappear.
    """
    return tuple(int(values.get(name, 0)) for name in names)


def numbered_dirs(parent: Path, prefix: str) -> list[tuple[str, Path]]:
    """``(number, path)`` for ``parent/<prefix><number>`` dirs, numerically sorted."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    found = [
        (p.name[len(prefix):], p)
        for p in entries
        if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()
    ]
    return sorted(found, key=lambda item: int(item[0]))
