"""Bad input kept aside where a person can look at it, never dropped.

Each rejected message or line is stored as ``<dir>/<YYYY-MM-DD>/<id>.raw``
(the bytes as received) with ``<id>.json`` (why, where from, when). Files are
fsynced before the caller acknowledges the input.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class QuarantineRecord:
    path: Path
    reason: str


def put(root: Path, data: bytes, reason: str, origin: str, details: list[str] | None = None,
        ) -> QuarantineRecord:
    """Store one rejected item durably and return where it went."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    folder = Path(root) / day
    folder.mkdir(parents=True, exist_ok=True)
    ident = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
    raw_path = folder / f"{ident}.raw"
    meta = {
        "reason": reason,
        "origin": origin,
        "details": (details or [])[:100],
        "bytes": len(data),
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for path, payload in ((raw_path, data), (folder / f"{ident}.json",
                                              json.dumps(meta, indent=1).encode())):
        with open(path, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return QuarantineRecord(raw_path, reason)


def count(root: Path) -> int:
    """Number of quarantined items (for checks and dashboards)."""
    root = Path(root)
    return sum(1 for _ in root.glob("*/*.json")) if root.exists() else 0


def list_records(root: Path, limit: int = 100) -> list[dict]:
    """The newest quarantine records, with their reasons."""
    root = Path(root)
    if not root.exists():
        return []
    paths = sorted(root.glob("*/*.json"), reverse=True)[:limit]
    return [dict(json.loads(p.read_text()), path=str(p.with_suffix(".raw"))) for p in paths]
