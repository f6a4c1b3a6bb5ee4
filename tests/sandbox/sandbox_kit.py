"""Helpers for the sandbox tests: stacks with short time constants, and a small,
time-bounded shopper load (real HTTP through the balancer from a few threads)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field

import requests

from peakready.sandbox.stack import Stack
from peakready.sandbox.timing import Timing

FAST = Timing(boot_delay_s=0.5, health_interval_s=0.25, health_timeout_s=0.5,
              healthy_threshold=2, unhealthy_threshold=2, deregistration_delay_s=0.5,
              db_failover_dns_s=0.5, cache_failover_s=0.5, cache_node_recover_s=1.0)


@contextlib.contextmanager
def running_stack(state_dir, instances: int = 2, timing: Timing = FAST,
                  storefront: dict | None = None):
    stack = Stack(state_dir, timing, storefront=storefront)
    try:
        stack.start(instances)
        assert stack.wait_healthy(instances, 30), stack.target_health()
        yield stack
    finally:
        stack.stop()


@dataclass
class Outcome:
    ts: float
    kind: str  # login | add | checkout | cart | browse
    status: int  # 0 = connection error
    detail: str = ""


@dataclass
class Shoppers:
    base_url: str
    users: int = 6
    think_s: float = 0.05
    skus: list[str] = field(default_factory=lambda: [f"SKU-{i:05d}" for i in range(1, 400)])
    outcomes: list[Outcome] = field(default_factory=list)
    confirmed_orders: list[str] = field(default_factory=list)
    sessions: dict[str, requests.Session] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, kind: str, resp: requests.Response | None, detail: str = "") -> None:
        with self._lock:
            self.outcomes.append(Outcome(time.time(), kind, resp.status_code if resp is not None
                                         else 0, detail))

    def _call(self, kind: str, s: requests.Session, method: str, path: str, **kw):
        try:
            resp = s.request(method, self.base_url + path, timeout=10, **kw)
        except requests.RequestException as exc:
            self._record(kind, None, type(exc).__name__)
            return None
        self._record(kind, resp)
        return resp

    def login(self, name: str) -> requests.Session | None:
        s = requests.Session()
        resp = self._call("login", s, "POST", "/api/login", json={"email": f"{name}@example.com"})
        if resp is not None and resp.status_code == 200:
            self.sessions[name] = s
            return s
        return None

    def _shop(self, n: int, mode: str) -> None:
        rng = random.Random(n)
        s = None
        while not self._stop.is_set():
            if s is None:
                s = self.login(f"user{n}")
                if s is None:
                    time.sleep(0.1)
                    continue
            if mode == "checkout":
                r = self._call("add", s, "POST", "/api/cart/items",
                               json={"sku": rng.choice(self.skus), "qty": 1})
                if r is not None and r.status_code == 200:
                    r = self._call("checkout", s, "POST", "/api/checkout")
                    if r is not None and r.status_code == 200:
                        with self._lock:
                            self.confirmed_orders.append(r.json()["order_id"])
            else:
                self._call("cart", s, "GET", "/api/cart")
            time.sleep(self.think_s)

    def start(self, mode: str = "checkout") -> Shoppers:
        for n in range(self.users):
            t = threading.Thread(target=self._shop, args=(n, mode), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def run_for(self, seconds: float, mode: str = "checkout") -> Shoppers:
        self.start(mode)
        time.sleep(seconds)
        self.stop()
        return self
