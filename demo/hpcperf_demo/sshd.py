"""A private sshd on loopback: the far end of an rsync-over-SSH export, for tests
and benchmarks (``openssh-server`` and ``rsync`` come from ``scripts/setup``).

Throwaway host and user keys in a folder of the caller's; the remote shell
string it yields is what ``HPCPERF_EXPORT_SSH`` would hold in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpcperfstats.ports import free_port

SSHD = "/usr/sbin/sshd"


def available() -> bool:
    """sshd and rsync are installed."""
    return os.path.exists(SSHD) and shutil.which("rsync") is not None


@contextmanager
def running(folder: Path, timeout_s: float = 15) -> Iterator[tuple[str, str]]:
    """An sshd on a free loopback port; yields (``user@127.0.0.1``, remote shell)."""
    d = Path(folder)
    d.mkdir(mode=0o700, parents=True)
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n")
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host.pub').read_text()}")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=log)
    try:
        ssh = (f"ssh -p {port} -i {d / 'user'} -o UserKnownHostsFile={d / 'known_hosts'} "
               "-o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5")
        deadline = time.monotonic() + timeout_s
        while subprocess.run([*ssh.split(), "127.0.0.1", "true"],
                             capture_output=True).returncode:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {(d / 'sshd.log').read_text()}")
            time.sleep(0.2)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        yield f"{user}@127.0.0.1", ssh
    finally:
        proc.terminate()
        proc.wait(timeout=10)
