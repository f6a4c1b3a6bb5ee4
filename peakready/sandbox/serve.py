"""Serving loop shared by the storefront and the balancer's admin API: keep-alive
connections over ``http11``, a handler coroutine per request, and a process that ends
itself when its parent (the sandbox daemon) is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable

from peakready.sandbox import http11

Handler = Callable[[http11.Request], Awaitable[bytes]]


def connection_handler(handler: Handler, idle_timeout_s: float | None = None):
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if idle_timeout_s:
                    req = await asyncio.wait_for(http11.read_request(reader), idle_timeout_s)
                else:
                    req = await http11.read_request(reader)
                if req is None:
                    break
                writer.write(await handler(req))
                await writer.drain()
                if not req.keep_alive:
                    break
        except http11.ProtocolError as exc:
            try:
                writer.write(http11.json_response(400, {"error": str(exc)}, keep_alive=False))
            except Exception:  # noqa: BLE001
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    return on_connection


def listening_socket(fd: int | None, port: int = 0) -> socket.socket:
    """The socket the parent bound for us (no port race), or a fresh one."""
    if fd is not None:
        sock = socket.socket(fileno=fd)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    sock.setblocking(False)
    return sock


def bind_listener(port: int = 0) -> socket.socket:
    """A listening, inheritable loopback socket for a child process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


async def run_until_stopped(stop_hooks: list[Callable[[], Awaitable[None]]] | None = None,
                            parent_pid: int | None = None) -> None:
    """Block until SIGTERM/SIGINT or the parent's death, then run ``stop_hooks``."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = parent_pid if parent_pid is not None else os.getppid()

    async def watch_parent() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                stop.set()

    watcher = asyncio.create_task(watch_parent())
    await stop.wait()
    watcher.cancel()
    for hook in stop_hooks or []:
        try:
            await asyncio.wait_for(hook(), 2.0)
        except Exception:  # noqa: BLE001 - shutting down regardless
            pass
