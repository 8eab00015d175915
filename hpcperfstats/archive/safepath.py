"""Names from the wire never become paths unchecked.

A host name from a record line or ``$hostname`` (or an imported archive's
directory name) is used as a folder name under the archive root; before it
is, it must be a host name by RFC 1123 (dot-separated labels of ASCII
letters, digits and inner hyphens, 1-63 characters each, 253 in all), and
its short form (:func:`accounting.short_host`) is one such label. Every path
the drain, the importer or the quarantine writes is then proven to resolve
inside its root before it is opened, so neither ``/etc``, ``..``, ``...``
nor a symbolic link planted in the archive can lead a write elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hpcperfstats.jobs.accounting import short_host

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


class UnsafeName(ValueError):
    """A name from the input that must not become a path."""


def host_folder(name: str) -> str:
    """The short host name of ``name``, checked: the archive folder for its files.

    Raises :class:`UnsafeName` (a ``ValueError``) with the reason otherwise.
    """
    if not isinstance(name, str) or not name or len(name) > 253:
        raise UnsafeName(f"host name {name!r}: empty or longer than 253 characters")
    labels = name.lower().split(".")
    bad = [label for label in labels if not _LABEL.fullmatch(label)]
    if bad:
        raise UnsafeName(f"host name {name[:80]!r} is not an RFC 1123 host name "
                         f"(bad label {bad[0][:80]!r})")
    short = short_host(name)
    if not _LABEL.fullmatch(short):  # short_host strips and lowers: check its result too
        raise UnsafeName(f"host name {name[:80]!r} has no valid short name")
    return short


def inside(root: Path, path: Path, real_root: str | None = None) -> Path:
    """``path`` if it resolves to somewhere strictly below ``root``, else raise.

    Both are resolved (symbolic links followed, ``..`` removed) as the
    kernel would when opening, so the check holds for what gets written.
    ``real_root``: ``os.path.realpath(root)`` already resolved by a caller
    that checks many paths under one root (the root is configuration, not
    input; every ``path`` is still resolved each time).
    """
    real_root = real_root or os.path.realpath(root)
    real = os.path.realpath(path)
    if real == real_root or not real.startswith(real_root.rstrip("/") + "/"):
        raise UnsafeName(f"path {str(path)[:200]!r} is outside {str(root)!r}")
    return path
