"""How Slurm's prolog and epilog tell the running daemon about a job.

The daemon holds an ``flock`` on ``daemon.lock`` in the host's state
directory for as long as it runs and writes its pid to ``daemon.pid``. A
``--begin``/``--end`` run finds the lock held, drops a request file into
``requests/`` (named by time, so they are taken in order; several jobs
sharing a node each leave their own) and wakes the daemon with SIGUSR1.
The daemon takes the marked sample itself, so the node's samples stay one
stream with one header and one sequence. With no daemon running the
request is answered by the caller itself (see ``cli``). Requests left by a
daemon that stopped meanwhile are taken when it next starts.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

from hpcperf_monitor.state import atomic_write

KINDS = ("begin", "end")


class Control:
    def __init__(self, host_dir: Path) -> None:
        self.dir = Path(host_dir) / "requests"
        self.lock_path = Path(host_dir) / "daemon.lock"
        self.pid_path = Path(host_dir) / "daemon.pid"
        self._fd: int | None = None

    def hold(self) -> bool:
        """Become the host's daemon; False when another one runs."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        atomic_write(self.pid_path, f"{os.getpid()}\n".encode())
        self.dir.mkdir(exist_ok=True)
        return True

    def release(self) -> None:
        if self._fd is not None:
            self.pid_path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def daemon_pid(self) -> int | None:
        """The running daemon's pid, or None when none holds the lock."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None  # we got it: nobody holds it
        except BlockingIOError:
            try:
                return int(self.pid_path.read_text().strip())
            except (OSError, ValueError):
                return None
        finally:
            os.close(fd)

    def request(self, kind: str, jobid: str) -> bool:
        """Hand ``kind`` for ``jobid`` to the daemon; False when no daemon runs."""
        pid = self.daemon_pid()
        if pid is None:
            return False
        self.dir.mkdir(exist_ok=True)
        atomic_write(self.dir / f"{time.time_ns():019d}-{os.getpid()}.{kind}", jobid.encode())
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass  # it stopped; its successor takes the request at start
        return True

    def pending(self) -> list[tuple[Path, str, str]]:
        """``(file, kind, jobid)`` of waiting requests, oldest first."""
        out = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        for name in names:
            kind = name.rsplit(".", 1)[-1]
            if kind not in KINDS:
                continue
            path = self.dir / name
            try:
                out.append((path, kind, path.read_text().strip()))
            except FileNotFoundError:
                continue
        return out
