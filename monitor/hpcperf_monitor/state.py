"""The monitor's small on-disk state for one host: sequence number and jobs.

Several processes touch it at once (the daemon, and the ``--begin``/``--end``
runs started by Slurm's prolog and epilog), so every read-modify-write holds
an ``flock`` and every file is replaced atomically (write, fsync, rename): a
crash leaves the old value or the new one, never a torn file. The directory
is per host so a state dir on a shared home never mixes two nodes' numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file.

    Temp file in the same directory, fsync, rename, fsync the directory; the
    temp file is removed if anything fails, and the result is 0644 whatever
    the umask, so other users (the pipeline, an admin) can read it.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def flocked(path: Path, timeout: float | None = None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields whether it was acquired.

    ``timeout=None`` waits as long as it takes; otherwise it gives up after
    ``timeout`` seconds and yields False, so a caller can fall back instead
    of hanging a Slurm prolog behind a slow broker.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            got = True
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    got = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        got = False
                        break
                    time.sleep(0.05)
        yield got
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class HostState:
    """``<state_dir>/<host>/``: ``seq``, ``jobs``, ``state.lock`` and ``spool/``."""

    def __init__(self, state_dir: Path, host: str) -> None:
        self.dir = Path(state_dir) / host
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def spool_dir(self) -> Path:
        return self.dir / "spool"

    def _read_int(self, name: str) -> int:
        try:
            return int((self.dir / name).read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.error("state file %s unreadable (%s); counting from 0", self.dir / name, exc)
            return 0

    def next_seq(self) -> int:
        """The next sequence number (1, 2, ...), persisted before it is used."""
        with flocked(self.dir / "state.lock"):
            seq = self._read_int("seq") + 1
            atomic_write(self.dir / "seq", f"{seq}\n".encode())
        return seq

    def _jobs(self) -> list[str]:
        try:
            return (self.dir / "jobs").read_text().split()
        except FileNotFoundError:
            return []

    def _write_lines(self, name: str, lines: list[str]) -> None:
        atomic_write(self.dir / name, "".join(line + "\n" for line in lines).encode())

    def _lines(self, name: str) -> list[str]:
        try:
            return (self.dir / name).read_text().splitlines()
        except FileNotFoundError:
            return []

    def begin_job(self, jobid: str, cgroup_id: str | None = None, gpus: str | None = None) -> None:
        """Record a job started on this node (its prolog ran).

        ``cgroup_id`` is the id Slurm's cgroup directory is named by when it
        differs from ``jobid`` (an array task's own job id); ``gpus`` the
        GPU indices Slurm gave the job (``SLURM_JOB_GPUS``).
        """
        with flocked(self.dir / "state.lock"):
            jobs = [j for j in self._jobs() if j != jobid] + [jobid]
            self._write_lines("jobs", jobs)
            if cgroup_id and cgroup_id != jobid:
                kept = [line for line in self._lines("jobmap") if line.split()[1:2] != [jobid]]
                self._write_lines("jobmap", [*kept, f"{cgroup_id} {jobid}"])
            if gpus:
                kept = [line for line in self._lines("jobgpus") if line.split()[:1] != [jobid]]
                self._write_lines("jobgpus", [*kept, f"{jobid} {gpus}"])

    def end_job(self, jobid: str) -> None:
        """Forget a job whose epilog ran."""
        with flocked(self.dir / "state.lock"):
            self._write_lines("jobs", [j for j in self._jobs() if j != jobid])
            for name, col in (("jobmap", 1), ("jobgpus", 0)):
                lines = self._lines(name)
                kept = [line for line in lines if line.split()[col:col + 1] != [jobid]]
                if kept != lines:
                    self._write_lines(name, kept)

    def job_gpus(self) -> dict[str, str]:
        """``{jobid: gpu list}`` of the running jobs that were given GPUs."""
        return dict(line.split()[:2] for line in self._lines("jobgpus") if len(line.split()) >= 2)

    def running_jobs(self) -> list[str]:
        """Every job whose prolog ran and whose epilog has not, oldest first."""
        return self._jobs()

    def current_job(self) -> str:
        """The most recently begun job still running, or ``-`` for none.

        The record line has room for one job id; on a node shared by several
        jobs the newest one is named (the pipeline maps the others by their
        accounting host lists and times).
        """
        jobs = self._jobs()
        return jobs[-1] if jobs else "-"


def read_jobmap(host_dir: Path) -> dict[str, str]:
    """``{cgroup directory id: job id}`` written by ``--begin J --cgroup-id N``."""
    try:
        text = (Path(host_dir) / "jobmap").read_text()
    except OSError:
        return {}
    return dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)
