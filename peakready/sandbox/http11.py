"""A minimal HTTP/1.1 reader/writer on asyncio streams, shared by the storefront, the
balancer and its admin API.

Hand-written (no framework) because the storefront and the balancer share two cores with
the load generator: parsing must cost a few microseconds, not a framework's hundreds.
Only what the sandbox needs: Content-Length bodies (no chunked encoding), keep-alive.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 302: "Found", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 409: "Conflict", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as the sandbox speaks it."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    raw_head: bytes = b""  # request line + headers exactly as received (for proxying)
    _path: str | None = field(default=None, repr=False)
    _query: dict[str, str] | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        if self._path is None:
            self._split()
        return self._path  # type: ignore[return-value]

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._split()
        return self._query  # type: ignore[return-value]

    def _split(self) -> None:
        from urllib.parse import parse_qsl

        path, _, qs = self.target.partition("?")
        self._path = path
        self._query = dict(parse_qsl(qs)) if qs else {}

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        for part in raw.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw_head: bytes = b""


async def _read_head(reader: asyncio.StreamReader) -> list[bytes] | None:
    """Lines of one message head; None on a clean EOF before the first byte."""
    first = await reader.readline()
    if not first:
        return None
    while first in (b"\r\n", b"\n"):  # tolerate stray CRLF between messages
        first = await reader.readline()
        if not first:
            return None
    lines = [first]
    while True:
        line = await reader.readline()
        if not line:
            raise ProtocolError("connection closed inside a message head")
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line)
        if len(lines) > 100:
            raise ProtocolError("too many header lines")


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"malformed header line {line[:60]!r}")
        headers[key.strip().lower()] = value.strip()
    return headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ProtocolError("chunked bodies are not supported by the sandbox")
    length = headers.get("content-length")
    if not length:
        return b""
    try:
        n = int(length)
    except ValueError as exc:
        raise ProtocolError(f"bad content-length {length!r}") from exc
    return await reader.readexactly(n) if n else b""


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection; None when the client closed it cleanly."""
    lines = await _read_head(reader)
    if lines is None:
        return None
    parts = lines[0].decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise ProtocolError(f"malformed request line {lines[0][:80]!r}")
    headers = _parse_headers(lines[1:])
    body = await _read_body(reader, headers)
    return Request(parts[0], parts[1], parts[2], headers, body, b"".join(lines))


async def read_response(reader: asyncio.StreamReader) -> Response | None:
    """The next response on a connection; None when the server closed before a byte."""
    lines = await _read_head(reader)
    if lines is None:
        return None
    parts = lines[0].decode("latin-1").split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"malformed status line {lines[0][:80]!r}") from exc
    headers = _parse_headers(lines[1:])
    body = await _read_body(reader, headers)
    return Response(status, headers, body, b"".join(lines))


def render_response(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
    keep_alive: bool = True,
) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"]
    if content_type:
        head.append(f"Content-Type: {content_type}\r\n")
    head.append(f"Content-Length: {len(body)}\r\n")
    if not keep_alive:
        head.append("Connection: close\r\n")
    if headers:
        for key, value in headers.items():
            head.append(f"{key}: {value}\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + body


def json_response(status: int, data: Any, headers: dict[str, str] | None = None,
                  keep_alive: bool = True) -> bytes:
    return render_response(status, json.dumps(data, default=str).encode(), headers,
                           keep_alive=keep_alive)


def render_request(method: str, target: str, host: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> bytes:
    head = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"]
    if headers:
        for key, value in headers.items():
            head.append(f"{key}: {value}\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + body
