"""Sessions and carts in Redis, surviving the loss of the primary.

The storefront knows every node of the replication group and finds the primary itself
(``ROLE`` on each node), as a cluster-mode-disabled ElastiCache client does through the
primary endpoint. A login is confirmed only after ``WAIT 1`` saw it on the replica, so a
user who got a session cookie keeps it when the primary dies. Reads fall back to any
reachable node while no primary exists (between the crash and the promotion).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

SESSION_TTL_S = 3600
WAIT_MS = 200
_LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


class CacheUnavailable(Exception):
    """No Redis primary reachable right now."""


class SessionStore:
    def __init__(self, nodes: list[tuple[str, int]], timeout_s: float = 1.0) -> None:
        self.clients = [
            aioredis.Redis(host=h, port=p, socket_timeout=timeout_s,
                           socket_connect_timeout=min(0.5, timeout_s),
                           retry=Retry(NoBackoff(), 0), decode_responses=True)
            for h, p in nodes
        ]
        self._primary = 0
        self._primary_lost = False  # the primary failed and no promoted one is known yet
        self._skip_wait_until = 0.0
        self.failovers_seen = 0

    async def _find_primary(self) -> int | None:
        for i, client in enumerate(self.clients):
            try:
                role = await client.execute_command("ROLE")
            except (*_LINK_ERRORS, ResponseError):
                continue
            if role and role[0] == "master":
                return i
        return None

    async def _write(self, op) -> Any:
        """Run ``op(client)`` on the primary, rediscovering it once on a link error."""
        for attempt in (1, 2):
            try:
                return await op(self.clients[self._primary])
            except _LINK_ERRORS as exc:
                found = await self._find_primary()
                if found is None or attempt == 2:
                    raise CacheUnavailable(f"no redis primary: {exc}") from exc
                if found != self._primary:
                    self.failovers_seen += 1
                self._primary = found
        raise AssertionError("unreachable")

    async def _read(self, op) -> Any:
        """The primary; while none is known (between its crash and the promotion), any
        node that answers (the replica has every confirmed session).

        Until a primary is found again, every read looks for it first, so reads never go
        back to the failed node: it returns as a replica that starts empty and answers
        "no such session" until its first sync completes."""
        last: Exception | None = None
        if self._primary_lost:
            await self._rediscover()
        if not self._primary_lost:
            try:
                return await op(self.clients[self._primary])
            except _LINK_ERRORS as exc:
                last = exc
            await self._rediscover()
            if not self._primary_lost:
                try:
                    return await op(self.clients[self._primary])
                except _LINK_ERRORS as exc:
                    last = exc
        others = [c for i, c in enumerate(self.clients) if i != self._primary]
        for client in [*others, self.clients[self._primary]]:  # the failed one last
            try:
                return await op(client)
            except _LINK_ERRORS as exc:
                last = exc
        raise CacheUnavailable(f"no redis node reachable: {last}")

    async def _rediscover(self) -> None:
        found = await self._find_primary()
        self._primary_lost = found is None
        if found is not None and found != self._primary:
            self.failovers_seen += 1
            self._primary = found

    async def _replicate(self, client: aioredis.Redis) -> None:
        """Wait until a replica has the write, unless none has answered recently (then a
        lone primary serves, as ElastiCache does while the failed node is replaced)."""
        if time.monotonic() < self._skip_wait_until:
            return
        acked = await client.execute_command("WAIT", 1, WAIT_MS)
        if not acked:
            self._skip_wait_until = time.monotonic() + 1.0

    async def create_session(self, email: str) -> str:
        sid = secrets.token_urlsafe(18)
        payload = json.dumps({"email": email, "created": time.time()})

        async def op(client: aioredis.Redis) -> None:
            await client.set(f"session:{sid}", payload, ex=SESSION_TTL_S)
            await self._replicate(client)

        await self._write(op)
        return sid

    async def get_session(self, sid: str | None) -> dict | None:
        if not sid:
            return None
        raw = await self._read(lambda c: c.get(f"session:{sid}"))
        return json.loads(raw) if raw else None

    async def cart(self, sid: str) -> dict[str, int]:
        raw = await self._read(lambda c: c.hgetall(f"cart:{sid}"))
        return {sku: int(qty) for sku, qty in raw.items()}

    async def add_to_cart(self, sid: str, sku: str, qty: int) -> dict[str, int]:
        async def op(client: aioredis.Redis) -> dict[str, int]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hincrby(f"cart:{sid}", sku, qty)
                pipe.expire(f"cart:{sid}", SESSION_TTL_S)
                pipe.hgetall(f"cart:{sid}")
                _, _, items = await pipe.execute()
            await self._replicate(client)
            return {k: int(v) for k, v in items.items()}

        return await self._write(op)

    async def clear_cart(self, sid: str) -> None:
        await self._write(lambda c: c.delete(f"cart:{sid}"))

    async def close(self) -> None:
        for client in self.clients:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001
                pass
