"""Free TCP ports on loopback for servers the demo and tests start."""

from __future__ import annotations

import socket

#: ports this process already handed out: the OS may offer a just-closed port
#: again, and two servers told the same "free" port race for it
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it), never one this
    process has handed out before."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
    raise OSError("no fresh loopback port after 100 tries")
