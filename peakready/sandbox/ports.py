"""Loopback ports held for servers that bind their port themselves (PostgreSQL, Redis).

"Bind to port 0, read the port, close, start the server on it" races with every other
process on the machine: between the close and the server's bind (seconds for a
PostgreSQL standby, and again while a failed node is down before it rejoins on the same
port) another process may get the port, and the node dies with "Address already in
use". A ``PortHold`` keeps the port bound (SO_REUSEADDR, never listening) for as long
as the sandbox lives:

- Linux never hands a bound port to another ``bind(0)`` nor to an outgoing connection's
  ephemeral port, and refuses an explicit ``bind`` of it without SO_REUSEADDR;
- PostgreSQL and redis-server set SO_REUSEADDR on their listening socket, and Linux lets
  a reuse-address socket listen on a port that other reuse-address sockets only hold
  bound, so the server starts on its held port, and restarts on it after a crash.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class PortHold:
    """Loopback ports held until ``release``; ``ports`` are what the servers bind."""

    _socks: list[socket.socket] = field(default_factory=list)

    def take(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socks.append(sock)
        return sock.getsockname()[1]

    def take_many(self, count: int) -> tuple[int, ...]:
        return tuple(self.take() for _ in range(count))

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self._socks]

    def release(self) -> None:
        for sock in self._socks:
            sock.close()
        self._socks.clear()

    def __enter__(self) -> PortHold:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
