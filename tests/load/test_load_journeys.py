"""Shopper journeys: a campaign day converts more, and cart steps need a login first."""

import random
import sys
from collections import Counter

from loadkit import ROOT

sys.path.insert(0, str(ROOT / "scenarios"))
from journeys import MIXES, load_catalog, next_step, pick_sku  # noqa: E402


def walk(mix: str, steps: int = 20000) -> Counter:
    rng, step, logged_in, seen = random.Random(7), "home", False, Counter()
    for _ in range(steps):
        seen[step] += 1
        logged_in = logged_in or step == "login"
        step = next_step(step, logged_in, mix, rng)
    return seen


def test_campaign_day_converts_more_than_a_normal_day():
    normal, campaign = walk("normal"), walk("campaign")
    conversion = {m: c["checkout"] / sum(c.values()) for m, c in
                  (("normal", normal), ("campaign", campaign))}
    assert conversion["campaign"] > 2 * conversion["normal"] > 0


def test_cart_steps_need_a_session():
    rng = random.Random(1)
    for mix in MIXES:
        for _ in range(500):
            assert next_step("product", False, mix, rng) != "add"
            assert next_step("cart", False, mix, rng) in {"login", "product"}


def test_catalog_matches_the_sandbox_convention():
    catalog = load_catalog()
    assert len(catalog.skus) == 3000 and catalog.skus[0] == "SKU-00001"
    assert catalog.flash_skus == tuple(f"SKU-{90000 + i:05d}" for i in range(1, 11))
    assert set(catalog.categories) == {"shoes", "sneakers", "boots", "sandals", "kids",
                                       "sports", "accessories", "outlet"}
    rng = random.Random(3)
    flash = sum(pick_sku(catalog, "campaign", rng) in catalog.flash_skus for _ in range(2000))
    assert 400 < flash < 800  # ~30 % of campaign product views go to the flash sale
