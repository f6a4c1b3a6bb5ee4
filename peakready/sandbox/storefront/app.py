"""The storefront API of DESIGN.md, one instance per process.

Every request except ``/health`` and the sandbox's own ``/_sandbox/stats`` runs inside a
worker slot for its endpoint's service cost plus its real DB/Redis work, so the instance
saturates like a VM. Errors of the data tier become 503 with a one-line reason, never a
hang: the balancer and the load generator must see the outage.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from peakready.sandbox import http11
from peakready.sandbox.storefront import apilog, db
from peakready.sandbox.storefront.config import StorefrontConfig
from peakready.sandbox.storefront.search import ProductSearch, SearchUnavailable
from peakready.sandbox.storefront.sessions import CacheUnavailable, SessionStore
from peakready.sandbox.storefront.workers import WorkerPool

SKU_PATH = re.compile(r"^/api/products/([^/]+)$")
ORDER_PATH = re.compile(r"^/api/orders/([^/]+)$")
MAX_QTY = 100
UNLOGGED = ("/health", "/_sandbox/stats")  # the platform's own traffic, not the shop's API


def route_of(path: str) -> str:
    """The route template an API log groups by (``/api/products/{sku}``)."""
    if SKU_PATH.match(path):
        return "/api/products/{sku}"
    if ORDER_PATH.match(path):
        return "/api/orders/{order_id}"
    return path


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Storefront:
    def __init__(self, instance_id: str, config: StorefrontConfig, db_nodes: list[tuple[str, int]],
                 redis_nodes: list[tuple[str, int]], boot_delay_s: float,
                 launched_at: float | None = None, search_url: str = "") -> None:
        self.instance_id = instance_id
        self.config = config
        self.pool = WorkerPool(config.workers)
        self.db = db.Pool(db.conninfo(db_nodes), config.workers, config.db_timeout_s)
        self.sessions = SessionStore(redis_nodes, config.redis_timeout_s)
        self.search = ProductSearch(search_url) if search_url else None
        self.ready_at = (launched_at or time.time()) + boot_delay_s
        self.statuses: dict[int, int] = {}
        self.requests = 0
        self._id_header = {"X-Instance-Id": instance_id}
        log_cfg = apilog.settings(config.api_logs)
        self.api_log = apilog.Batcher(log_cfg).start() if log_cfg.enabled else None

    # --- plumbing -------------------------------------------------------------------
    def booted(self) -> bool:
        return time.time() >= self.ready_at

    async def handle(self, req: http11.Request) -> bytes:
        """One request -> the full response bytes, and its API log record."""
        started, t0 = time.time(), time.perf_counter()
        response, status = await self._handle(req)
        if self.api_log is not None and req.path not in UNLOGGED:
            h = req.headers
            self.api_log.log(apilog.record(
                h.get("x-request-id") or "", started, req.method, route_of(req.path), status,
                (time.perf_counter() - t0) * 1000.0, self.instance_id,
                h.get("x-forwarded-for", ""), h.get("user-agent", "")))
        return response

    async def _handle(self, req: http11.Request) -> tuple[bytes, int]:
        self.requests += 1
        path = req.path
        try:
            if path == "/health":
                status, body = self._health()
            elif path == "/_sandbox/stats":
                status, body = 200, self.stats()
            elif not self.booted():
                status, body = 503, {"error": "booting"}
            else:
                status, body = await self._route(req, path)
        except HttpError as exc:
            status, body = exc.status, {"error": exc.message}
        except db.DatabaseUnavailable as exc:
            status, body = 503, {"error": f"database unavailable: {exc}"}
        except CacheUnavailable as exc:
            status, body = 503, {"error": f"cache unavailable: {exc}"}
        except SearchUnavailable as exc:
            status, body = exc.status, {"error": exc.message}
        except Exception as exc:  # noqa: BLE001 - a bug is a 500, not a dead instance
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self.statuses[status] = self.statuses.get(status, 0) + 1
        headers = dict(self._id_header)
        if isinstance(body, tuple):  # (payload, extra headers)
            body, extra = body
            headers.update(extra)
        return http11.json_response(status, body, headers, keep_alive=req.keep_alive), status

    def _health(self) -> tuple[int, Any]:
        if self.booted():
            return 200, {"status": "ok", "instance_id": self.instance_id}
        return 503, {"status": "booting", "ready_in_s": round(self.ready_at - time.time(), 2)}

    def stats(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "workers": self.pool.workers,
            "in_use": self.pool.in_use(),
            "waiting": self.pool.waiting,
            "busy": round(self.pool.busy_fraction(), 4),
            "busy_seconds": round(self.pool.busy_seconds(), 4),
            "uptime_s": round(time.monotonic() - self.pool.started, 3),
            "served": self.pool.served,
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "booted": self.booted(),
            "db_errors": self.db.errors,
            "cache_failovers_seen": self.sessions.failovers_seen,
            "search_partial": self.search.partial if self.search else 0,
            "search_rejected": self.search.rejected if self.search else 0,
            "api_log": self.api_log.stats() if self.api_log is not None else None,
        }

    async def _work(self, endpoint: str, coro_fn) -> Any:
        """Hold a worker for the endpoint's cost, then do the real work in the slot."""
        async with self.pool.slot():
            cost = self.config.cost_s(endpoint)
            if cost > 0:
                await asyncio.sleep(cost)
            return await coro_fn()

    async def _route(self, req: http11.Request, path: str) -> tuple[int, Any]:
        m = req.method
        if path == "/" and m == "GET":
            return 200, {"featured": await self._work("home", lambda: self.db.run(db.featured))}
        if path == "/api/products" and m == "GET":
            return await self._work("products", lambda: self._products(req))
        if path == "/api/search" and m == "GET":
            return await self._work("search", lambda: self._search(req))
        if path == "/api/login" and m == "POST":
            return await self._work("login", lambda: self._login(req))
        if path == "/api/cart" and m == "GET":
            return await self._work("cart", lambda: self._cart(req))
        if path == "/api/cart/items" and m == "POST":
            return await self._work("cart_add", lambda: self._cart_add(req))
        if path == "/api/checkout" and m == "POST":
            return await self._work("checkout", lambda: self._checkout(req))
        if (match := SKU_PATH.match(path)) and m == "GET":
            return await self._work("product", lambda: self._product(match.group(1)))
        if (match := ORDER_PATH.match(path)) and m == "GET":
            return await self._work("order", lambda: self._order(match.group(1)))
        if path in ("/", "/api/products", "/api/search", "/api/login", "/api/cart",
                    "/api/cart/items", "/api/checkout") or SKU_PATH.match(path) \
                or ORDER_PATH.match(path):
            raise HttpError(405, f"{m} not allowed on {path}")
        raise HttpError(404, f"no route {path}")

    # --- endpoints ------------------------------------------------------------------
    async def _products(self, req: http11.Request) -> tuple[int, Any]:
        category = req.query.get("category") or None
        try:
            page = max(1, int(req.query.get("page") or 1))
        except ValueError as exc:
            raise HttpError(400, "page must be an integer") from exc
        items = await self.db.run(lambda c: db.list_products(c, category, page))
        return 200, {"category": category, "page": page, "items": items}

    async def _search(self, req: http11.Request) -> tuple[int, Any]:
        q = (req.query.get("q") or "").strip()
        if not q:
            raise HttpError(400, "q is required")
        if self.search is None:
            raise HttpError(503, "search unavailable: no search domain configured")
        items, headers = await self.search.search(q)
        return 200, ({"q": q, "items": items}, headers)

    async def _product(self, sku: str) -> tuple[int, Any]:
        product = await self.db.run(lambda c: db.get_product(c, sku))
        if product is None:
            raise HttpError(404, f"no product {sku}")
        return 200, product

    async def _order(self, order_id: str) -> tuple[int, Any]:
        order = await self.db.run(lambda c: db.get_order(c, order_id))
        if order is None:
            raise HttpError(404, f"no order {order_id}")
        return 200, order

    async def _login(self, req: http11.Request) -> tuple[int, Any]:
        body = _json_body(req)
        email = str(body.get("email") or "").strip()
        if not email:
            raise HttpError(400, "email is required")
        sid = await self.sessions.create_session(email)
        cookie = f"session={sid}; Path=/; HttpOnly"
        return 200, ({"email": email}, {"Set-Cookie": cookie})

    async def _session(self, req: http11.Request) -> tuple[str, dict]:
        sid = req.cookie("session")
        session = await self.sessions.get_session(sid)
        if session is None:
            raise HttpError(401, "no session")
        return sid, session  # type: ignore[return-value]

    async def _cart(self, req: http11.Request) -> tuple[int, Any]:
        sid, _ = await self._session(req)
        items = await self.sessions.cart(sid)
        return 200, _cart_body(items)

    async def _cart_add(self, req: http11.Request) -> tuple[int, Any]:
        sid, _ = await self._session(req)
        body = _json_body(req)
        sku = str(body.get("sku") or "")
        try:
            qty = int(body.get("qty", 1))
        except (TypeError, ValueError) as exc:
            raise HttpError(400, "qty must be an integer") from exc
        if not sku or not 1 <= qty <= MAX_QTY:
            raise HttpError(400, f"sku is required and qty must be 1..{MAX_QTY}")
        product = await self.db.run(lambda c: db.get_product(c, sku))
        if product is None:
            raise HttpError(404, f"no product {sku}")
        items = await self.sessions.add_to_cart(sid, sku, qty)
        return 200, _cart_body(items)

    async def _checkout(self, req: http11.Request) -> tuple[int, Any]:
        sid, session = await self._session(req)
        items = await self.sessions.cart(sid)
        if not items:
            raise HttpError(400, "cart is empty")
        checkout = db.Checkout(session.get("email", ""), items, self.instance_id)
        try:
            result = await self.db.run(checkout, retry_safe=lambda: not checkout.committing)
        except db.OutOfStock as exc:
            raise HttpError(409, f"out of stock: {exc.sku}") from exc
        try:
            await self.sessions.clear_cart(sid)
        except CacheUnavailable:
            pass  # the order is placed; a stale cart is the lesser evil than a lost order
        return 200, result

    async def close(self) -> None:
        if self.api_log is not None:
            await asyncio.to_thread(self.api_log.stop, 1.0)
        await self.db.close()
        await self.sessions.close()


def _json_body(req: http11.Request) -> dict:
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, "body must be JSON") from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HttpError(400, "body must be a JSON object")
    return body


def _cart_body(items: dict[str, int]) -> dict:
    return {"items": [{"sku": s, "qty": q} for s, q in sorted(items.items())],
            "count": sum(items.values())}



