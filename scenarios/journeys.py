"""Shopper journeys as a Markov chain over storefront pages: one step = one request.

Pure data and a pure ``next_step``, so the mix is testable without Locust. A campaign
day raises conversion (product -> cart, cart -> checkout) and sends more shoppers to the
flash-sale items; see docs/load.md for the numbers.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

# step -> [(next step, weight)]; "add", "cart" and "checkout" need a session (login first)
NORMAL: dict[str, list[tuple[str, float]]] = {
    "home": [("category", 0.5), ("search", 0.3), ("product", 0.2)],
    "category": [("product", 0.6), ("category", 0.2), ("search", 0.1), ("home", 0.1)],
    "search": [("product", 0.7), ("search", 0.2), ("home", 0.1)],
    "product": [("add", 0.08), ("product", 0.35), ("category", 0.3), ("search", 0.15),
                ("home", 0.12)],
    "login": [("add", 1.0)],
    "add": [("cart", 0.5), ("product", 0.5)],
    "cart": [("checkout", 0.5), ("product", 0.5)],
    "checkout": [("home", 1.0)],
}
CAMPAIGN: dict[str, list[tuple[str, float]]] = {
    **NORMAL,
    "home": [("product", 0.45), ("category", 0.35), ("search", 0.2)],
    "product": [("add", 0.22), ("product", 0.33), ("category", 0.25), ("search", 0.1),
                ("home", 0.1)],
    "add": [("cart", 0.7), ("product", 0.3)],
    "cart": [("checkout", 0.8), ("product", 0.2)],
}
MIXES = {"normal": NORMAL, "campaign": CAMPAIGN}
FLASH_SHARE = {"normal": 0.0, "campaign": 0.3}  # share of product views on flash-sale items
NEEDS_SESSION = {"add", "cart", "checkout"}


@dataclass(frozen=True)
class Catalog:
    skus: tuple[str, ...]
    flash_skus: tuple[str, ...]
    categories: tuple[str, ...]
    search_terms: tuple[str, ...]


def load_catalog(data_dir: Path = DATA) -> Catalog:
    with (data_dir / "catalog.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    terms = [t for t in (data_dir / "search_terms.txt").read_text().split("\n") if t]
    return Catalog(
        skus=tuple(r["sku"] for r in rows if r["flash_sale"] == "0"),
        flash_skus=tuple(r["sku"] for r in rows if r["flash_sale"] == "1"),
        categories=tuple(dict.fromkeys(r["category"] for r in rows)),
        search_terms=tuple(terms),
    )


def next_step(current: str, logged_in: bool, mix: str, rng: random.Random) -> str:
    """The page after ``current``; a step that needs a session becomes a login first."""
    choices = MIXES[mix][current]
    step = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
    if step in NEEDS_SESSION and not logged_in:
        return "login"
    return step


def pick_sku(catalog: Catalog, mix: str, rng: random.Random) -> str:
    if catalog.flash_skus and rng.random() < FLASH_SHARE[mix]:
        return rng.choice(catalog.flash_skus)
    return rng.choice(catalog.skus)
