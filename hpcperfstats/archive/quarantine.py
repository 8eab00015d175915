"""Bad input kept aside where a person can look at it, never dropped.

Each rejected message or line is stored as ``<dir>/<dd>/<digest>.raw`` (the
bytes as received) with ``<digest>.json`` (why, where from, when), where
``digest`` is the SHA-256 of the bytes and ``dd`` its first two hex digits.
Keying by digest makes storing idempotent for every caller: a message
redelivered after a crash between quarantine and ack, or an accounting line
seen again when its day is re-materialised, is recognised and stored once.
Files are fsynced before the caller acknowledges the input; the ``.json`` is
written last (atomically), so a record exists once its ``.json`` does.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from hpcperf_monitor.state import atomic_write

from hpcperfstats.archive.safepath import inside


@dataclass
class QuarantineRecord:
    path: Path
    reason: str
    #: False when the same bytes were already in quarantine (a redelivery)
    new: bool = True


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(root: Path, data: bytes, reason: str, origin: str, details: list[str] | None = None,
        ) -> QuarantineRecord:
    """Store one rejected item durably (once per distinct bytes); say where it is."""
    key = digest(data)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = inside(root, root / key[:2])
    raw_path, meta_path = folder / f"{key}.raw", folder / f"{key}.json"
    if meta_path.exists():
        return QuarantineRecord(raw_path, json.loads(meta_path.read_text())["reason"], new=False)
    folder.mkdir(exist_ok=True)
    meta = {
        "reason": reason,
        "origin": origin,
        "details": (details or [])[:100],
        "bytes": len(data),
        "sha256": key,
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write(raw_path, data)
    atomic_write(meta_path, json.dumps(meta, indent=1).encode())
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
    paths = sorted(root.glob("*/*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    return [dict(json.loads(p.read_text()), path=str(p.with_suffix(".raw")))
            for p in paths[:limit]]
