"""How big one storefront instance is: its worker pool and what each endpoint costs.

Capacity of one instance is about ``workers / mean cost``: with the defaults (4 workers,
a journey mix averaging ~35 ms) about 110 requests/s. Past that, requests queue for a
worker and latency climbs, as on a VM at 100 % CPU. The cost is *held* (a sleep while
owning a worker), never burnt, so the sandbox does not steal the load generator's CPU.
Override with ``PEAKREADY_STOREFRONT`` as JSON, e.g. ``{"workers": 8, "costs_ms":
{"search": 80}}``, or ``start(storefront=...)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

DEFAULT_COSTS_MS: dict[str, float] = {
    "home": 30.0,
    "products": 40.0,
    "product": 25.0,
    # the storefront's own share (query, a page of 20 items, as "products"); the search
    # engine's time is the search domain's, real and not counted here (docs/sandbox.md)
    "search": 40.0,
    "login": 30.0,
    "cart": 15.0,
    "cart_add": 25.0,
    "checkout": 80.0,
    "order": 15.0,
}


@dataclass(frozen=True)
class StorefrontConfig:
    workers: int = 4
    costs_ms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COSTS_MS))
    db_timeout_s: float = 5.0  # a DB call longer than this fails the request (503)
    redis_timeout_s: float = 1.0
    api_logs: dict = field(default_factory=dict)  # apilog.ApiLogSettings; {} = no API log

    def cost_s(self, endpoint: str) -> float:
        return self.costs_ms.get(endpoint, 0.0) / 1000.0


def from_dict(data: dict | None) -> StorefrontConfig:
    """Defaults overlaid with ``data``; ``costs_ms`` is merged key by key."""
    if not data:
        return StorefrontConfig()
    unknown = set(data) - {"workers", "costs_ms", "db_timeout_s", "redis_timeout_s", "api_logs"}
    if unknown:
        raise ValueError(f"storefront config: unknown keys {sorted(unknown)}")
    costs = dict(DEFAULT_COSTS_MS)
    extra = set(data.get("costs_ms", {})) - set(DEFAULT_COSTS_MS)
    if extra:
        raise ValueError(f"storefront config: unknown endpoints in costs_ms {sorted(extra)}")
    costs.update({k: float(v) for k, v in data.get("costs_ms", {}).items()})
    workers = int(data.get("workers", 4))
    if workers < 1:
        raise ValueError("storefront config: workers must be >= 1")
    return StorefrontConfig(
        workers=workers,
        costs_ms=costs,
        db_timeout_s=float(data.get("db_timeout_s", 5.0)),
        redis_timeout_s=float(data.get("redis_timeout_s", 1.0)),
        api_logs=dict(data.get("api_logs") or {}),
    )


def load(overrides: dict | None = None) -> StorefrontConfig:
    """``PEAKREADY_STOREFRONT`` JSON, then ``overrides`` on top."""
    raw = os.environ.get("PEAKREADY_STOREFRONT", "").strip()
    merged: dict = json.loads(raw) if raw else {}
    for key, value in (overrides or {}).items():
        if key in ("costs_ms", "api_logs"):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    return from_dict(merged)


def as_dict(config: StorefrontConfig) -> dict:
    return asdict(config)
