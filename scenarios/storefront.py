"""Shopper journeys for the peakready storefront API, paced by the campaign profile.

``locust -f scenarios/storefront.py`` works on its own with ``locust.conf``; peakready
starts it the same way. Each task is one request (the next page of the shopper's
journey), taken on an arrival token, so the request rate follows the profile (open
model). Requests are named by route template so statistics group. Every confirmed order
is appended to ``orders/<worker>.jsonl`` in the run folder.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from urllib.parse import quote

from locust import events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacks import TrafficMix  # noqa: E402
from journeys import load_catalog, next_step, pick_sku  # noqa: E402

import peakready.load.openmodel as openmodel  # noqa: E402
from peakready.load.openmodel import (  # noqa: E402,F401  (the shape is picked up by Locust)
    ArrivalRateShape,
    ArrivalUser,
    record_order,
)
from peakready.waf import loadmix  # noqa: E402

CATALOG = load_catalog()
MIX = TrafficMix()  # load.attacks / load.clients / load.tricky_shoppers (docs/waf.md)
# `locust -f scenarios/storefront.py` with no --traffic-profile replays the demo profile
openmodel.DEFAULT_PROFILE = str(Path(__file__).resolve().parent / "profiles" / "demo.csv")


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument("--shopper-mix", choices=["normal", "campaign"], default="campaign",
                        help="journey weights: a campaign day converts more")
    parser.add_argument("--think-scale", type=float, default=1.0,
                        help="multiplier on think times (0: no thinking)")


class Shopper(ArrivalUser):
    """Browses, searches, logs in, fills a cart and checks out, one request per token."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.mix = getattr(options, "shopper_mix", "campaign") or "campaign"
        self.think_scale = float(getattr(options, "think_scale", 1.0))
        self.rng = random.Random()
        self.step = "home"
        self.logged_in = False
        self.sku = pick_sku(CATALOG, self.mix, self.rng)
        # every request says where the shopper is (the sandbox ALB trusts it from loopback)
        self.headers = {"X-Forwarded-For": loadmix.shopper_address(self.rng, MIX.clients)}

    def think_time(self) -> float:
        return self.rng.uniform(0.5, 3.0) * self.think_scale

    @task
    def next_page(self) -> None:
        if MIX.attack_due(self.rng):  # this arrival is a bot's, tagged in its sample
            MIX.send_attack(self, self.rng)
            return
        getattr(self, f"_{self.step}")()
        self.step = next_step(self.step, self.logged_in, self.mix, self.rng)

    def _home(self) -> None:
        self.client.get("/", name="/", headers=self.headers)

    def _category(self) -> None:
        category = self.rng.choice(CATALOG.categories)
        self.client.get(f"/api/products?category={category}&page={self.rng.randint(1, 5)}",
                        name="/api/products", headers=self.headers)

    def _search(self) -> None:
        term = MIX.tricky_search(self.rng)
        q = quote(term, safe="") if term else self.rng.choice(CATALOG.search_terms)
        with self.client.get(f"/api/search?q={q}", name="/api/search", headers=self.headers,
                             catch_response=True) as resp:
            partial = resp.headers.get("X-Search-Partial")
            if resp.status_code == 200 and partial:
                # a 200 that lacks some shards' products: counted by the search check
                resp.failure(f"partial search results: {partial} shards failed")
            elif resp.status_code == 429:
                resp.failure("search rejected: HTTP 429 es_rejected_execution_exception")

    def _product(self) -> None:
        self.sku = pick_sku(CATALOG, self.mix, self.rng)
        self.client.get(f"/api/products/{self.sku}", name="/api/products/[sku]",
                        headers=self.headers)

    def _login(self) -> None:
        with self.client.post("/api/login", json={"email": f"{self.user_id}@example.test"},
                              name="/api/login", catch_response=True,
                              headers=self.headers) as resp:
            self.logged_in = resp.status_code == 200
            if not self.logged_in:
                resp.failure(f"login failed: HTTP {resp.status_code}")

    def _authed(self, method: str, path: str, **kwargs):
        """A request that needs the session (checked by ``_check_session``)."""
        return self.client.request(method, path, catch_response=True,
                                   headers=self.headers, **kwargs)

    def _add(self) -> None:
        body = {"sku": self.sku, "qty": 1}
        tricky = MIX.tricky_body(self.rng)  # a review, a name with quotes, a long cart
        if tricky is not None:
            body = {**json.loads(tricky), "sku": self.sku}
        with self._authed("POST", "/api/cart/items", name="/api/cart/items",
                          json=body) as resp:
            self._check_session(resp)

    def _cart(self) -> None:
        with self._authed("GET", "/api/cart", name="/api/cart") as resp:
            self._check_session(resp)

    def _checkout(self) -> None:
        with self._authed("POST", "/api/checkout", name="/api/checkout", json={}) as resp:
            if self._check_session(resp):
                return
            if resp.status_code == 409:
                resp.success()  # out of stock is a business outcome, not a server error
            elif resp.status_code == 200:
                order_id = (resp.json() or {}).get("order_id")
                if order_id is None:
                    resp.failure("checkout 200 without order_id")
                else:
                    record_order(str(order_id), self.user_id)

    def _check_session(self, resp) -> bool:
        """Marks a 401 as ``session lost`` and sends the shopper to log in again."""
        if resp.status_code == 401:
            resp.failure(f"session lost: HTTP 401 on {resp.request_meta['name']}")
            self.logged_in = False
            return True
        return False
