"""How big the sandbox search domain is: nodes, shards, pool sizes, costs and its times.

The search pool follows OpenSearch's formula, scaled down: ``threads =
int(allocated_processors * 3 / 2) + 1`` and a bounded queue (OpenSearch: 1000; here 50 by
default, so a campaign peak on a laptop can fill it). Each shard query holds one pool
thread for ``query_cost_ms`` (held, not burnt: the load generator needs the cores) plus
the real tantivy search, so a node saturates and rejects like a real one. Override with
``PEAKREADY_SEARCH`` as JSON, e.g. ``{"queue_size": 2, "query_cost_ms": 20}``, or from a
sandbox plan's ``target.sandbox.search`` (validated when the plan loads).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace

from peakready.sandbox.aws import names

DOMAIN = names.SEARCH_DOMAIN
INDEX = "products"


class SearchConfigError(ValueError):
    """A bad search setting; ``field`` names it (``queue_size``), so a plan can say
    ``target.sandbox.search.queue_size``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"search config: {field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SearchConfig:
    nodes: int = 3  # data nodes (each holds a copy of every shard)
    shards: int = 3  # primary shards of the products index
    replicas: int = 2  # replicas per primary: nodes - 1 puts a copy of each on every node
    allocated_processors: int = 1  # what the node "has"; sets the pool size
    queue_size: int = 50  # OpenSearch: 1000
    query_cost_ms: float = 4.0  # held per shard query, on top of the real search
    reboot_s: float = 3.0  # REBOOT_NODE: down this long before the process returns
    restart_s: float = 1.0  # RESTART_SEARCH_PROCESS: the process only
    recovery_s: float = 2.0  # a returning node's copies INITIALIZING before STARTED
    ping_s: float = 0.25  # how often the domain checks its nodes

    @property
    def threads(self) -> int:
        return int(self.allocated_processors * 3 / 2) + 1


def load(overrides: dict | None = None) -> SearchConfig:
    """The defaults, then ``PEAKREADY_SEARCH`` JSON, then ``overrides``; bad input raises
    ValueError naming the field."""
    raw = os.environ.get("PEAKREADY_SEARCH", "").strip()
    merged: dict = json.loads(raw) if raw else {}
    merged.update(overrides or {})
    return from_dict(merged)


def from_dict(data: dict | None) -> SearchConfig:
    """The defaults overlaid with ``data``; SearchConfigError names the first bad field."""
    data = dict(data or {})
    known = {f.name: f for f in fields(SearchConfig)}
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        raise SearchConfigError(unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
    out = {}
    for key, value in data.items():
        kind = int if known[key].type in ("int", int) else float
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SearchConfigError(key, f"must be a number >= 0, got {value!r}")
        if kind is int and value != int(value):
            raise SearchConfigError(key, f"must be an integer, got {value!r}")
        out[key] = kind(value)
    cfg = replace(SearchConfig(), **out)
    for key in ("nodes", "shards", "allocated_processors"):
        if getattr(cfg, key) < 1:
            raise SearchConfigError(key, "must be >= 1")
    if cfg.replicas > cfg.nodes - 1:
        raise SearchConfigError("replicas", f"must be <= nodes - 1 ({cfg.nodes - 1}): each "
                                            "copy of a shard lives on its own node")
    return cfg


def as_dict(cfg: SearchConfig) -> dict:
    return dict(asdict(cfg), threads=cfg.threads)


def node_name(i: int) -> str:
    return f"{DOMAIN}-node-{i + 1}"
