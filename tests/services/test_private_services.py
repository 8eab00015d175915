"""Items 10 and 11: the project's private servers are its own, and stay on loopback.

A server found on the embedded PostgreSQL's or the private RabbitMQ's port
may be another checkout's: it is used only when it proves to be ours (data
directory; node name, cookie and listener), otherwise a free port is taken,
printed and remembered. Erlang distribution (epmd and the node's dist port)
listens on loopback only.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from hpcperf_demo import rabbitmq

from hpcperfstats.db import embedded

pytestmark = pytest.mark.integration


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_item10_embedded_postgres_never_uses_a_foreign_server_on_its_port(
        pg_server, tmp_path, capfd):
    taken = port_of(pg_server)  # the session's server: someone else's, for this checkout
    home = tmp_path / "home"
    pgdata = home / "pgdata"
    try:
        url = embedded.start(pgdata, taken)
        mine = port_of(url)
        assert mine != taken
        assert f"port {taken} is held by a server that is not ours" in capfd.readouterr().err
        assert (home / embedded.PORT_FILE).read_text().strip() == str(mine)
        with psycopg.connect(url) as conn:
            found = conn.execute("SHOW data_directory").fetchone()[0]
        assert Path(found).resolve() == pgdata.resolve()
        assert embedded.start(pgdata, taken) == url  # running: found by its own pid file
        embedded.stop(pgdata)
        assert embedded.start(pgdata, taken) == url  # restarted on the remembered port
    finally:
        embedded.stop(pgdata)
    with psycopg.connect(pg_server) as conn:  # the other server is untouched
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_item10_private_rabbitmq_never_uses_a_foreign_broker_on_its_port(rabbit, capfd):
    base = Path(tempfile.mkdtemp(prefix="hpcperf-rabbit-squat-"))
    base.chmod(0o755)
    node = rabbitmq.node(base, rabbit.port, name="hpcperfsquat")
    try:
        assert not node.is_ours()  # the session's node holds the port
        node.start()
        assert node.port != rabbit.port and node.is_ours()
        assert f"port {rabbit.port} is held by a server that is not" in capfd.readouterr().err
        assert (base / rabbitmq.AMQP_PORT_FILE).read_text().strip() == str(node.port)
        again = rabbitmq.node(base, rabbit.port, name="hpcperfsquat")
        assert again.port == node.port  # remembered
        again.start()  # finds itself running: nothing moves
        assert again.port == node.port
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert rabbit.is_ours()


def listeners(port: int) -> set[str]:
    """Local addresses listening on TCP ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
            found.add(str(ipaddress.ip_address(raw)))
    return found


def test_item11_erlang_distribution_listens_on_loopback_only(rabbit):
    for port in (rabbit.epmd_port, rabbit.dist_port):
        addresses = listeners(port)
        assert addresses, f"nothing listens on {port}"
        assert all(ipaddress.ip_address(a).is_loopback for a in addresses), (port, addresses)
    env = rabbit.env()
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
