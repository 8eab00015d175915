"""Durable to-do markers between pipeline stages: one empty file per key.

The drain marks the hours it archived samples for; ``host_data`` marks the
job days whose metrics its rows change. A sensor turns markers into runs and
the consuming asset clears a marker only after its rows are committed, so a
crash anywhere leaves the work marked, never lost. A marker's mtime tells a
sensor whether it was re-marked since it last asked for a run.
"""

from __future__ import annotations

import os
from pathlib import Path


class Pending:
    def __init__(self, root: Path, kind: str):
        self.dir = Path(root) / "pending" / kind

    def mark(self, keys: set[str] | list[str]) -> None:
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for key in keys:
            path = self.dir / key
            with open(path, "a"):
                pass
            os.utime(path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def items(self) -> dict[str, int]:
        """Marked keys and their mtimes (ns), oldest key first."""
        if not self.dir.exists():
            return {}
        out = {}
        for path in sorted(self.dir.iterdir()):
            try:
                out[path.name] = path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
        return out

    def clear(self, keys: list[str], marked_before_ns: int | None = None) -> None:
        """Remove markers; with ``marked_before_ns``, keep any re-marked since."""
        for key in keys:
            path = self.dir / key
            try:
                if marked_before_ns is not None and path.stat().st_mtime_ns > marked_before_ns:
                    continue
                path.unlink()
            except FileNotFoundError:
                pass
