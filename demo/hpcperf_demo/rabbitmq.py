"""A private RabbitMQ node on 127.0.0.1 for the demo and integration tests.

Debian's ``rabbitmq-server`` is started detached with its own node name,
ports and directories, so it never meets a system broker. Erlang
distribution is bound to loopback: the node runs its own epmd on a private
port with ``ERL_EPMD_ADDRESS=127.0.0.1``, and the node's and the CLI's
distribution listeners use ``inet_dist_use_interface`` 127.0.0.1.
``ensure_installed`` installs the Debian package when absent (the README's
commands must work on a fresh machine).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hpcperfstats.ports import free_port


def ensure_installed() -> None:
    """Install Debian's rabbitmq-server if it is missing (needs root + apt)."""
    if shutil.which("rabbitmq-server"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("rabbitmq-server is not installed and cannot be installed here")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "rabbitmq-server"],
        check=True, env=env,
    )
    # the package starts a system node on some machines; ours must be alone
    subprocess.run(["rabbitmqctl", "shutdown"], capture_output=True, timeout=60)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


#: Erlang distribution listens on loopback only (the node's and the CLI's)
_LOOPBACK_DIST = "-kernel inet_dist_use_interface {127,0,0,1}"
#: files under the node's base directory: the ports it chose
AMQP_PORT_FILE, EPMD_PORT_FILE = "amqp.port", "epmd.port"


@dataclass
class RabbitNode:
    base: Path
    port: int
    nodename: str
    #: a private epmd for this node, on loopback: a machine's shared epmd may
    #: have been started by anyone, on every interface
    epmd_port: int = 4369

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def dist_port(self) -> int:
        return self.port + 20000 if self.port < 45000 else self.port - 20000

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_LOOPBACK_DIST,
            RABBITMQ_CTL_ERL_ARGS=_LOOPBACK_DIST,
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "rabbit.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
            HOME=str(self.base),
        )

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.nodename, *args],
            env=self.env(), capture_output=True, text=True, timeout=timeout,
        )

    def is_ours(self) -> bool:
        """Whether the broker on ``port`` is this node: reached by its name on its
        private epmd, with its cookie, and listening for AMQP on ``port``."""
        try:
            found = self.ctl("eval", "application:get_env(rabbit, tcp_listeners).", timeout=60)
        except subprocess.TimeoutExpired:
            return False
        return found.returncode == 0 and f",{self.port}}}" in found.stdout.replace(" ", "")

    def _move_off_foreign_port(self) -> None:
        chosen = free_port()
        print(f"RabbitMQ: port {self.port} is held by a server that is not node "
              f"{self.nodename} of {self.base}; using port {chosen}, remembered in "
              f"{self.base / AMQP_PORT_FILE}", file=sys.stderr, flush=True)
        self.port = chosen
        (self.base / AMQP_PORT_FILE).write_text(f"{chosen}\n")

    def start(self, timeout: float = 90) -> None:
        """Start detached and wait until AMQP answers; idempotent.

        A broker already listening on ``port`` is used only if it is this
        node; otherwise a free port is taken, printed and remembered.
        """
        if _listening(self.port):
            if self.is_ours():
                return
            self._move_off_foreign_port()
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        # small socket buffers: thousands of idle publishers cost ~0.2 MB each
        (self.base / "rabbitmq.conf").write_text(
            "loopback_users = none\n"
            "tcp_listen_options.sndbuf = 32768\n"
            "tcp_listen_options.recbuf = 32768\n"
        )
        cookie = self.base / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text("HPCPERFSTATSTESTCOOKIE")
            cookie.chmod(0o400)
        _give_to_rabbitmq_user(self.base)
        subprocess.Popen(
            ["rabbitmq-server"], env=self.env(), stdin=subprocess.DEVNULL,
            stdout=open(self.base / "server.out", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _listening(self.port):
                ping = subprocess.run(
                    ["rabbitmq-diagnostics", "-n", self.nodename, "-q", "ping"],
                    env=self.env(), capture_output=True, timeout=30,
                )
                if ping.returncode == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ did not start in {timeout}s; see {self.base / 'log'}")

    def stop(self) -> None:
        """``shutdown`` waits for the node to exit (``stop`` does not); then the
        node's private epmd goes too."""
        self.ctl("shutdown", timeout=120)
        subprocess.run(["epmd", "-kill"], env=self.env(), capture_output=True, timeout=30)

    def running(self) -> bool:
        return _listening(self.port)


def _give_to_rabbitmq_user(base: Path) -> None:
    """Debian's scripts drop root to the ``rabbitmq`` user: it must own its files."""
    if os.geteuid() != 0:
        return
    import pwd

    try:
        entry = pwd.getpwnam("rabbitmq")
    except KeyError:
        return
    for path in [base, *base.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def reachable_by_others(path: Path) -> bool:
    """Whether the ``rabbitmq`` user can traverse to ``path`` (all parents o+x)."""
    return all(p.stat().st_mode & 0o001 for p in Path(path).resolve().parents)


def _remembered(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def node(base: Path, port: int | None = None, name: str = "hpcperf") -> RabbitNode:
    """The private node living in ``base`` (ports it chose before are kept)."""
    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    epmd = _remembered(base / EPMD_PORT_FILE)
    if epmd is None:
        epmd = free_port()
        (base / EPMD_PORT_FILE).write_text(f"{epmd}\n")
    return RabbitNode(base=base, port=_remembered(base / AMQP_PORT_FILE) or port or free_port(),
                      nodename=f"{name}@localhost", epmd_port=epmd)
