"""The domain's client side to its nodes: keep-alive HTTP/1.1 connections per node over
asyncio streams (the ``http11`` writer/reader), a connection error raised as NodeDown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from peakready.sandbox import http11


class NodeDown(Exception):
    """The node refused, reset or did not answer: nothing can be assumed served."""


class NodeLink:
    def __init__(self, name: str, host: str, port: int, max_idle: int = 32) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self.in_flight = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def drop_idle(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def request(self, method: str, path: str, body: Any = None,
                      timeout: float = 10.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        self.in_flight += 1
        try:
            for attempt in (1, 2):  # an idle connection may have died with an old process
                conn = self._idle.pop() if self._idle else None
                fresh = conn is None
                try:
                    async with asyncio.timeout(timeout):
                        if conn is None:
                            conn = await asyncio.open_connection(self.host, self.port)
                        reader, writer = conn
                        writer.write(http11.render_request(
                            method, path, f"{self.host}:{self.port}", data,
                            {"Content-Type": "application/json"}))
                        await writer.drain()
                        resp = await http11.read_response(reader)
                    if resp is None:
                        raise ConnectionResetError("closed before the response")
                except (OSError, TimeoutError, asyncio.IncompleteReadError,
                        http11.ProtocolError) as exc:
                    if conn is not None:
                        conn[1].close()
                    if not fresh and attempt == 1 and not isinstance(exc, TimeoutError):
                        self.drop_idle()
                        continue
                    raise NodeDown(f"{self.name}: {type(exc).__name__}: {exc}") from exc
                if len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                else:
                    conn[1].close()
                return resp.status, json.loads(resp.body) if resp.body else None
            raise NodeDown(f"{self.name}: no connection")
        finally:
            self.in_flight -= 1
