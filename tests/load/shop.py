"""A small storefront speaking the peakready API, for the load tests and the benchmark.

Real HTTP on 127.0.0.1 (gevent WSGI, so thousands of slow requests can be in flight),
with a latency switch (``POST /_admin/latency {"ms": 2000}``), a session wipe that acts
like a cache-node loss (``POST /_admin/drop-sessions``) and counters
(``GET /_admin/stats``). Run: ``python tests/load/shop.py [--port 0]``; it prints
``PORT <n>`` once listening. Not the sandbox: no database, no balancer.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

CATALOG = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "catalog.csv"


class Shop:
    def __init__(self) -> None:
        with CATALOG.open() as fh:
            self.products = {r["sku"]: r for r in csv.DictReader(fh)}
        self.stock = {sku: int(r["stock"]) for sku, r in self.products.items()}
        self.latency_s = 0.0
        self.sessions: dict[str, dict[str, int]] = {}
        self.orders: dict[str, dict] = {}
        self.counts: dict[str, int] = {}
        self.ids = itertools.count(1)

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        if path.startswith("/_admin/"):
            status, body, headers = self.admin(method, path, environ)
        else:
            self.counts["total"] = self.counts.get("total", 0) + 1
            if path == "/health":  # the pre-flight reachability check among them
                self.counts["health"] = self.counts.get("health", 0) + 1
            if self.latency_s:
                gevent.sleep(self.latency_s)
            status, body, headers = self.route(method, path, environ)
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data))),
                                ("X-Instance-Id", "i-shop"), *headers])
        return [data]

    def admin(self, method, path, environ):
        if path == "/_admin/latency" and method == "POST":
            self.latency_s = float(_json(environ).get("ms", 0)) / 1000
            return "200 OK", {"latency_ms": self.latency_s * 1000}, []
        if path == "/_admin/drop-sessions" and method == "POST":
            self.sessions.clear()
            return "200 OK", {"dropped": True}, []
        if path == "/_admin/stats":
            return "200 OK", {"requests": self.counts.get("total", 0),
                              "health_checks": self.counts.get("health", 0),
                              "orders": len(self.orders)}, []
        return "404 Not Found", {"error": "not found"}, []

    def route(self, method, path, environ):
        session = _cookie(environ).get("session")
        if path == "/health":
            return "200 OK", {"ok": True}, []
        if path == "/":
            return "200 OK", {"featured": list(itertools.islice(self.products, 8))}, []
        if path == "/api/products":
            return "200 OK", {"items": list(itertools.islice(self.products, 24))}, []
        if path.startswith("/api/products/"):
            sku = path.rsplit("/", 1)[1]
            if sku not in self.products:
                return "404 Not Found", {"error": "no such product"}, []
            return "200 OK", {**self.products[sku], "stock": self.stock[sku]}, []
        if path == "/api/search":
            return "200 OK", {"items": list(itertools.islice(self.products, 10))}, []
        if path == "/api/login" and method == "POST":
            token = f"s{next(self.ids)}"
            self.sessions[token] = {}
            return "200 OK", {"ok": True}, [("Set-Cookie", f"session={token}; Path=/")]
        if path.startswith("/api/orders/"):
            order = self.orders.get(path.rsplit("/", 1)[1])
            return ("200 OK", order, []) if order else ("404 Not Found", {"error": "no"}, [])
        if path.startswith("/api/cart") or path == "/api/checkout":
            if session not in self.sessions:
                return "401 Unauthorized", {"error": "no session"}, []
            cart = self.sessions[session]
            if path == "/api/cart/items" and method == "POST":
                item = _json(environ)
                cart[item["sku"]] = cart.get(item["sku"], 0) + int(item.get("qty", 1))
                return "200 OK", {"items": cart}, []
            if path == "/api/cart":
                return "200 OK", {"items": cart}, []
            if path == "/api/checkout" and method == "POST":
                if not cart or any(self.stock.get(s, 0) < q for s, q in cart.items()):
                    return "409 Conflict", {"error": "out of stock"}, []
                for sku, qty in cart.items():
                    self.stock[sku] -= qty
                order_id = f"o{next(self.ids)}"
                self.orders[order_id] = {"order_id": order_id, "items": dict(cart)}
                cart.clear()
                return "200 OK", {"order_id": order_id}, []
        return "404 Not Found", {"error": "not found"}, []


def _json(environ) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw or b"{}")


def _cookie(environ) -> dict[str, str]:
    pairs = (p.strip().split("=", 1) for p in environ.get("HTTP_COOKIE", "").split(";") if "=" in p)
    return {k: v for k, v in pairs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="127.0.0.1", help="address (a test host's own)")
    args = parser.parse_args()
    server = WSGIServer((args.bind, args.port), Shop(), log=None, error_log=None)
    server.init_socket()
    print(f"PORT {server.server_port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
