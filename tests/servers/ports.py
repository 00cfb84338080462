"""Free loopback ports for servers the tests start themselves."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports the kernel reports free right now.

    All sockets stay bound until every port is picked, so the ports differ from each other; a
    server that loses a port to a race must retry with new ones.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port(host: str = LOOPBACK) -> int:
    """One port the kernel reports free right now."""
    return free_ports(1, host)[0]
