"""Attack requests and tricky shoppers mixed into the campaign load (``load.attacks``).

A shopper's arrival token becomes an attack with probability ``rate``: the request is
one corpus entry of a category drawn evenly, sent from a bot address, and tagged in its
sample (``attack`` column = its category) so it never counts against the shoppers' SLO
and always counts in the ``waf`` check. Credential stuffing is a burst of ``burst``
login attempts from one bot address. Tricky shoppers are ordinary journeys whose search
term or cart body comes from the benign-but-tricky corpus.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict

from peakready.waf import corpus, loadmix


class TrafficMix:
    def __init__(self, raw: str | None = None) -> None:
        cfg = json.loads(raw if raw is not None else os.environ.get(loadmix.ENV) or "{}")
        self.attacks = cfg.get("attacks")
        self.clients = cfg.get("clients") or dict(loadmix.DEFAULT_CLIENTS)
        self.tricky_share = float(cfg.get("tricky_shoppers") or 0.0)
        self.by_category: dict[str, list[corpus.AttackRequest]] = defaultdict(list)
        if self.attacks:
            for req in corpus.attack_requests(self.attacks["corpus"],
                                              wanted=self.attacks["categories"]):
                self.by_category[req.category].append(req)
        self.categories = list(self.attacks["categories"]) if self.attacks else []
        self.tricky = corpus.tricky_shoppers() if self.tricky_share else []
        self.seq = 0

    def attack_due(self, rng: random.Random) -> bool:
        return bool(self.categories) and rng.random() < self.attacks["rate"]

    def send_attack(self, user, rng: random.Random) -> None:
        category = rng.choice(self.categories)
        bot = loadmix.bot_address(rng.randrange(self.attacks["bots"]))
        if category == "credential-stuffing":
            for _ in range(self.attacks["burst"]):
                self.seq += 1
                self._send(user, corpus.login_attempt(self.seq), bot)
            return
        self._send(user, rng.choice(self.by_category[category]), bot)

    @staticmethod
    def _send(user, req: corpus.AttackRequest, address: str) -> None:
        headers = {"X-Forwarded-For": address, "User-Agent": corpus.BROWSER_UA,
                   **req.headers}
        with user.client.request(req.method, req.path, name=req.name, data=req.body or None,
                                 headers=headers, catch_response=True,
                                 context={"attack": req.category}) as resp:
            resp.success()  # an attack's outcome is the WAF's verdict, not an error

    def tricky_search(self, rng: random.Random) -> str | None:
        if not self.tricky or rng.random() >= self.tricky_share:
            return None
        terms = [t for t in self.tricky if t.kind == "search"]
        return rng.choice(terms).text

    def tricky_body(self, rng: random.Random) -> bytes | None:
        if not self.tricky or rng.random() >= self.tricky_share:
            return None
        bodies = [t for t in self.tricky if t.kind != "search"]
        return rng.choice(bodies).request()[2]
