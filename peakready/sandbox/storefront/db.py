"""The storefront's PostgreSQL side: a small connection pool on the writer, and the
queries of the API.

The conninfo lists both nodes with ``target_session_attrs=read-write``, so a new
connection lands on whichever node is the writer now: the application-side twin of
Aurora's cluster endpoint. After a failover every idle connection is dead; the pool drops
them all on the first error, so the outage the user sees ends when the new writer is up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

T = TypeVar("T")
PAGE_SIZE = 20


class DatabaseUnavailable(Exception):
    """No writer reachable (failover in progress) or the call timed out."""


class OutOfStock(Exception):
    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku


def conninfo(nodes: list[tuple[str, int]], dbname: str = "shop", user: str = "postgres",
             connect_timeout: int = 2) -> str:
    hosts = ",".join(h for h, _ in nodes)
    ports = ",".join(str(p) for _, p in nodes)
    return (f"host={hosts} port={ports} dbname={dbname} user={user} "
            f"target_session_attrs=read-write connect_timeout={connect_timeout} "
            "application_name=storefront")


class Pool:
    """At most ``size`` connections (one per worker), created on demand."""

    def __init__(self, dsn: str, size: int, timeout_s: float) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout_s = timeout_s
        self._idle: list[psycopg.AsyncConnection] = []
        self.errors = 0

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, row_factory=dict_row
        )

    async def run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]],
                  retry_safe: Callable[[], bool] = lambda: True) -> T:
        """Run ``work`` on a connection. A connection-level failure is retried once on a
        fresh connection when ``retry_safe()`` says nothing can have been committed."""
        for attempt in (1, 2):
            conn = self._idle.pop() if self._idle else None
            try:
                async with asyncio.timeout(self.timeout_s):  # cheaper than wait_for
                    if conn is None:
                        conn = await self._connect()
                    result = await work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError,
                    TimeoutError) as exc:
                self.errors += 1
                await self._discard(conn)
                self._drop_idle()  # they point at the same (probably dead) server
                if attempt == 1 and retry_safe():
                    continue
                raise DatabaseUnavailable(str(exc).strip().splitlines()[0] if str(exc)
                                          else type(exc).__name__) from exc
            except Exception:
                if conn is not None and not (conn.closed or conn.broken):
                    self._idle.append(conn)  # an application error: the link is fine
                else:
                    await self._discard(conn)
                raise
            except BaseException:  # cancelled mid-call: the connection state is unknown
                await self._discard(conn)
                raise
            if conn.closed or conn.broken:
                await self._discard(conn)
            elif len(self._idle) < self.size:
                self._idle.append(conn)
            else:
                await conn.close()
            return result
        raise AssertionError("unreachable")

    async def _discard(self, conn: psycopg.AsyncConnection | None) -> None:
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 0.5)
        except Exception:  # noqa: BLE001 - a dead connection may fail to close
            pass

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.pgconn.finish()
            except Exception:  # noqa: BLE001
                pass

    async def close(self) -> None:
        self._drop_idle()


def _product(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("price"), Decimal):
        out["price"] = float(out["price"])
    return out


PRODUCT_COLS = "sku, name, category, price, stock, flash_sale"


async def featured(conn: psycopg.AsyncConnection) -> list[dict]:
    cur = await conn.execute(
        f"(SELECT {PRODUCT_COLS} FROM products WHERE flash_sale ORDER BY sku) "
        f"UNION ALL (SELECT {PRODUCT_COLS} FROM products WHERE NOT flash_sale "
        "ORDER BY stock DESC, sku LIMIT 12)"
    )
    return [_product(r) for r in await cur.fetchall()]


async def list_products(conn: psycopg.AsyncConnection, category: str | None,
                        page: int) -> list[dict]:
    offset = (page - 1) * PAGE_SIZE
    if category:
        cur = await conn.execute(
            f"SELECT {PRODUCT_COLS} FROM products WHERE category = %s ORDER BY sku "
            "LIMIT %s OFFSET %s", (category, PAGE_SIZE, offset))
    else:
        cur = await conn.execute(
            f"SELECT {PRODUCT_COLS} FROM products ORDER BY sku LIMIT %s OFFSET %s",
            (PAGE_SIZE, offset))
    return [_product(r) for r in await cur.fetchall()]


async def get_product(conn: psycopg.AsyncConnection, sku: str) -> dict | None:
    cur = await conn.execute(f"SELECT {PRODUCT_COLS} FROM products WHERE sku = %s", (sku,))
    row = await cur.fetchone()
    return _product(row) if row else None


async def search(conn: psycopg.AsyncConnection, q: str) -> list[dict]:
    cur = await conn.execute(
        f"SELECT {PRODUCT_COLS}, ts_rank(tsv, query) AS rank "
        "FROM products, websearch_to_tsquery('simple', %s) AS query "
        "WHERE tsv @@ query ORDER BY rank DESC, sku LIMIT %s", (q, PAGE_SIZE))
    rows = await cur.fetchall()
    return [_product({k: v for k, v in r.items() if k != "rank"}) for r in rows]


async def get_order(conn: psycopg.AsyncConnection, order_id: str) -> dict | None:
    cur = await conn.execute(
        "SELECT order_id, email, total, created_at, instance_id FROM orders "
        "WHERE order_id = %s", (order_id,))
    order = await cur.fetchone()
    if not order:
        return None
    cur = await conn.execute(
        "SELECT sku, qty, price FROM order_lines WHERE order_id = %s ORDER BY sku",
        (order_id,))
    lines = await cur.fetchall()
    order["total"] = float(order["total"])
    order["created_at"] = order["created_at"].timestamp()
    order["lines"] = [{**ln, "price": float(ln["price"])} for ln in lines]
    return order


class Checkout:
    """One order as one transaction. ``committing`` tells the pool whether a retry is
    still safe (it is not once COMMIT has been sent: the order may exist)."""

    def __init__(self, email: str, items: dict[str, int], instance_id: str) -> None:
        self.email = email
        self.items = items
        self.instance_id = instance_id
        self.committing = False

    async def __call__(self, conn: psycopg.AsyncConnection) -> dict:
        order_id = uuid.uuid4().hex
        total = Decimal(0)
        lines = []
        await conn.execute("BEGIN")
        try:
            for sku in sorted(self.items):  # fixed order: no deadlock between checkouts
                qty = self.items[sku]
                cur = await conn.execute(
                    "UPDATE products SET stock = stock - %s WHERE sku = %s AND stock >= %s "
                    "RETURNING price", (qty, sku, qty))
                row = await cur.fetchone()
                if row is None:
                    raise OutOfStock(sku)
                total += row["price"] * qty
                lines.append((order_id, sku, qty, row["price"]))
            await conn.execute(
                "INSERT INTO orders (order_id, email, total, instance_id) "
                "VALUES (%s, %s, %s, %s)", (order_id, self.email, total, self.instance_id))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO order_lines (order_id, sku, qty, price) "
                    "VALUES (%s, %s, %s, %s)", lines)
        except BaseException:
            if not conn.broken and not conn.closed:
                try:
                    await conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass
            raise
        self.committing = True
        await conn.execute("COMMIT")
        return {"order_id": order_id, "total": float(total)}
