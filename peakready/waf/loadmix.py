"""The plan's traffic mix for WAF testing (``load.attacks``, ``load.clients``,
``load.tricky_shoppers``): validation naming the field, and the client address model.

Shoppers come from a pool of addresses, a share of them behind a few CGNAT addresses
(RFC 6598, 100.64.0.0/10: a mobile carrier puts thousands of phones behind one); bots
from a few addresses of their own. On the sandbox each request carries its address as
``X-Forwarded-For`` (the sandbox ALB trusts it only from loopback).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from peakready.errors import BadInput
from peakready.waf import corpus

ENV = "PEAKREADY_TRAFFIC_MIX"  # the resolved mix, handed to the Locust processes
ATTACK_KEYS = {"rate", "categories", "corpus", "bots", "burst", "intended"}
CLIENT_KEYS = {"pool", "cgnat", "cgnat_share"}
DEFAULT_CLIENTS = {"pool": 2000, "cgnat": 3, "cgnat_share": 0.2}


def _number(where: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value) and lo <= value <= hi and (not integer or int(value) == value)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise BadInput(f"{where}: must be {kind} from {lo:g} to {hi:g}, got {value!r}")
    return int(value) if integer else float(value)


def parse_attacks(raw: Any, where: str = "load.attacks", find=None) -> dict | None:
    """``{rate, categories, corpus, bots, burst}`` resolved, or None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: must be a mapping (rate, categories, corpus, bots, burst)")
    extra = sorted(set(raw) - ATTACK_KEYS)
    if extra:
        raise BadInput(f"{where}.{extra[0]}: unknown field (known: {', '.join(sorted(ATTACK_KEYS))})")
    out = {"rate": _number(f"{where}.rate", raw.get("rate", 0.01), 0.0, 0.5),
           "bots": _number(f"{where}.bots", raw.get("bots", 2), 1, 250, integer=True),
           "burst": _number(f"{where}.burst", raw.get("burst", 30), 1, 1000, integer=True),
           "corpus": str(corpus.ATTACKS_FILE), "categories": corpus.categories(),
           "intended": raw.get("intended") is True}
    if raw.get("corpus") is not None:
        path = find(raw["corpus"]) if find else raw["corpus"]
        if path is None:
            raise BadInput(f"{where}.corpus: file not found: {raw['corpus']}")
        corpus.attack_requests(path, f"{where}.corpus")  # readable, known families
        out["corpus"] = str(path)
    cats = raw.get("categories")
    if cats is not None:
        known = corpus.categories()
        if not isinstance(cats, list) or not cats:
            raise BadInput(f"{where}.categories: a non-empty list (known: {', '.join(known)})")
        for i, cat in enumerate(cats):
            if cat not in known:
                raise BadInput(f"{where}.categories[{i}]: unknown category {cat!r} "
                               f"(known: {', '.join(known)})")
        out["categories"] = list(cats)
    return out


def parse_clients(raw: Any, where: str = "load.clients") -> dict:
    if raw is None:
        return dict(DEFAULT_CLIENTS)
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: must be a mapping (pool, cgnat, cgnat_share)")
    extra = sorted(set(raw) - CLIENT_KEYS)
    if extra:
        raise BadInput(f"{where}.{extra[0]}: unknown field (known: {', '.join(sorted(CLIENT_KEYS))})")
    d = DEFAULT_CLIENTS
    return {"pool": _number(f"{where}.pool", raw.get("pool", d["pool"]), 1, 100_000,
                            integer=True),
            "cgnat": _number(f"{where}.cgnat", raw.get("cgnat", d["cgnat"]), 0, 250,
                             integer=True),
            "cgnat_share": _number(f"{where}.cgnat_share",
                                   raw.get("cgnat_share", d["cgnat_share"]), 0.0, 1.0)}


def env_value(attacks: dict | None, clients: dict, tricky: float) -> str:
    return json.dumps({"attacks": attacks, "clients": clients, "tricky_shoppers": tricky})


def shopper_address(rng: random.Random, clients: dict) -> str:
    """One shopper's address for its whole visit (sticky, like a phone or a laptop)."""
    if clients["cgnat"] and rng.random() < clients["cgnat_share"]:
        return cgnat_address(rng.randrange(clients["cgnat"]))
    i = rng.randrange(clients["pool"])
    return f"198.18.{i // 250}.{i % 250 + 1}"  # RFC 2544 benchmarking range


def cgnat_address(i: int) -> str:
    return f"100.64.{i // 250}.{i % 250 + 1}"


def bot_address(i: int) -> str:
    return f"192.0.2.{10 + i}"  # TEST-NET-1
