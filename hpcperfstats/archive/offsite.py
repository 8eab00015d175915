"""Off-site export of closed archive days, with a checksum manifest.

A day goes to ``<target>/<YYYY-MM-DD>/<host>/<epoch>.gz`` (and its ``.idx``)
with ``MANIFEST.sha256`` (``sha256sum -c`` format) written last. The target
is a mounted path (tape/HSM staging, NFS) or an rsync-over-SSH destination
``[user@]host:/path``. The copy is verified by reading it back (the mounted
files, or an rsync pull into a scratch folder) against the manifest; only a
verified day may lose its local copy, and only once it is older than the
configured age. A day whose manifest is already at the target and verifies
is not sent again.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hpcperf_monitor.state import atomic_write

from hpcperfstats.archive.days import DAY, compress_day, sha256

MANIFEST = "MANIFEST.sha256"
#: ``[user@]host:path`` (rsync's remote shell form); anything else is a path
_REMOTE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+:(?!//)")


class DayNotClosed(RuntimeError):
    """Some host's file of the day is still its newest (the drain may append)."""


@dataclass
class ExportResult:
    day: str
    files: int = 0
    bytes: int = 0
    sent: int = 0  # files sent by this run (0 when the target already held the day)
    verified: bool = False
    removed: int = 0
    manifest: str = ""
    hosts: set[str] = field(default_factory=set)


def day_name(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day))


def manifest_text(root: Path, files: list[Path]) -> str:
    """``<sha256>  <host>/<name>`` for each file and its index, sorted."""
    lines = []
    for path in files:
        for part in (path, path.with_name(path.name + ".idx")):
            if part.exists():
                lines.append(f"{sha256(part)}  {part.relative_to(root).as_posix()}\n")
    return "".join(sorted(lines, key=lambda s: s[66:]))


def bad_entries(folder: Path, manifest: str) -> list[str]:
    """Entries of ``manifest`` missing from ``folder`` or with another checksum."""
    bad = []
    for line in manifest.splitlines():
        digest, name = line[:64], line[66:]
        path = folder / name
        if not path.is_file() or sha256(path) != digest:
            bad.append(name)
    return bad


class Target:
    """Where days go: ``put`` the files then the manifest, ``pull`` them back."""

    def __init__(self, spec: str, ssh: str = "ssh", timeout_s: float = 3600):
        self.spec, self.ssh, self.timeout_s = spec.rstrip("/"), ssh, timeout_s
        self.remote = bool(_REMOTE.match(spec))

    def _rsync(self, *args: str) -> subprocess.CompletedProcess:
        cmd = ["rsync", "-a", "--protect-args", "-e", self.ssh, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)

    def manifest(self, day: str) -> str | None:
        """The manifest at the target, None when there is none."""
        if not self.remote:
            path = Path(self.spec) / day / MANIFEST
            return path.read_text() if path.exists() else None
        with tempfile.TemporaryDirectory() as tmp:
            done = self._rsync(f"{self.spec}/{day}/{MANIFEST}", f"{tmp}/")
            path = Path(tmp) / MANIFEST
            return path.read_text() if done.returncode == 0 and path.exists() else None

    def put(self, root: Path, day: str, names: list[str], manifest: str) -> None:
        """Files first, manifest last: a manifest at the target means a whole day."""
        if not self.remote:
            dest = Path(self.spec) / day
            for name in names:
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(out, (root / name).read_bytes())  # aside, fsync, rename
            atomic_write(dest / MANIFEST, manifest.encode())
            return
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "files"
            listing.write_text("".join(f"{n}\n" for n in names))
            (Path(tmp) / "day" / day).mkdir(parents=True)
            (Path(tmp) / "day" / day / MANIFEST).write_text(manifest)
            # rsync cannot make nested folders at the far end: send the day folder
            self._check(self._rsync(f"{tmp}/day/{day}/", f"{self.spec}/{day}/",
                                    "--exclude", MANIFEST))
            self._check(self._rsync("--files-from", str(listing), f"{root}/",
                                    f"{self.spec}/{day}/"))
            self._check(self._rsync(f"{tmp}/day/{day}/{MANIFEST}", f"{self.spec}/{day}/"))

    def verify(self, day: str, manifest: str) -> list[str]:
        """Entries the target does not hold intact (read back, not trusted)."""
        if not self.remote:
            return bad_entries(Path(self.spec) / day, manifest)
        with tempfile.TemporaryDirectory() as tmp:
            done = self._rsync(f"{self.spec}/{day}/", f"{tmp}/")
            if done.returncode != 0:
                return [f"read-back failed: {done.stderr.strip()[:300]}"]
            return bad_entries(Path(tmp), manifest)

    @staticmethod
    def _check(done: subprocess.CompletedProcess) -> None:
        if done.returncode != 0:
            raise OSError(f"rsync failed ({done.returncode}): {done.stderr.strip()[:500]}")


def export_day(root: Path, day: int, target: Target, remove_after_days: float | None = None,
               now: float | None = None) -> ExportResult:
    """Compress, send, verify and (optionally) remove the local copy of one UTC day."""
    root = Path(root)
    name = day_name(day)
    files, still_open = compress_day(root, day)
    if still_open:
        raise DayNotClosed(f"{name}: {len(still_open)} files still open (their host has sent "
                           f"nothing since), e.g. {', '.join(map(str, still_open[:5]))}")
    result = ExportResult(name, files=len(files), bytes=sum(p.stat().st_size for p in files),
                          hosts={p.parent.name for p in files})
    if not files:
        result.verified = True
        return result
    manifest = manifest_text(root, files)
    result.manifest = manifest
    names = [line[66:] for line in manifest.splitlines()]
    if target.manifest(name) != manifest or target.verify(name, manifest):
        target.put(root, name, names, manifest)
        result.sent = len(names)
    bad = target.verify(name, manifest)
    if bad:
        raise OSError(f"{name}: copy at {target.spec} does not verify: {', '.join(bad[:10])}")
    result.verified = True
    now = time.time() if now is None else now
    if remove_after_days is not None and now - (day + DAY) >= remove_after_days * DAY:
        for entry in names:
            (root / entry).unlink(missing_ok=True)
            result.removed += 1
    return result
