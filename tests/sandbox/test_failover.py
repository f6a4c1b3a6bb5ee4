"""Data-tier faults under load: PostgreSQL failover and Redis primary loss."""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_kit import Shoppers, running_stack


@pytest.fixture(scope="module")
def fo_stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("failover")) as st:
        yield st


def _write_failures(shoppers: Shoppers, kinds=("add", "checkout")) -> list:
    return [o for o in shoppers.outcomes if o.kind in kinds and o.status != 200]


def test_db_failover_under_load_loses_no_confirmed_order(fo_stack):
    base = f"http://127.0.0.1:{fo_stack.lb_port}"
    shoppers = Shoppers(base, users=6).start("checkout")
    try:
        time.sleep(2.0)
        result = fo_stack.failover_db()
        time.sleep(4.0)
    finally:
        shoppers.stop()
    assert result["from"] == "peakready-db-1" and result["to"] == "peakready-db-2"
    roles = {n["name"]: n["role"] for n in fo_stack.db_nodes()}
    assert roles == {"peakready-db-1": "reader", "peakready-db-2": "writer"}

    failures = _write_failures(shoppers)
    assert failures, "the failover must be visible to the load"
    assert all(o.status == 503 for o in failures)  # a clear error, never a hang
    window = failures[-1].ts - failures[0].ts
    assert failures[0].ts >= result["started_at"] - 0.1
    assert window < 8.0, f"writes failed for {window:.1f} s"
    later = [o for o in shoppers.outcomes if o.kind == "checkout" and o.ts > failures[-1].ts]
    assert later and all(o.status == 200 for o in later)  # writes succeed again

    confirmed = list(shoppers.confirmed_orders)
    assert len(confirmed) > 20
    missing = [oid for oid in confirmed
               if requests.get(f"{base}/api/orders/{oid}", timeout=5).status_code != 200]
    assert missing == []


def test_old_writer_rejoins_as_standby_and_can_fail_back(fo_stack):
    t0 = time.monotonic()
    # crash recovery + pg_rewind + a restart: ~5 s on a quiet machine, far more on a busy one
    while fo_stack.pg.last_rejoin.get("ok") is not True:
        assert time.monotonic() - t0 < 90, fo_stack.pg.last_rejoin
        time.sleep(0.1)
    assert fo_stack.pg.last_rejoin["method"] == "pg_rewind"
    stats = fo_stack.db_stats()
    assert stats["writer"] == "peakready-db-2"
    assert stats["nodes"]["peakready-db-2"]["replicas"][0]["sync_state"] == "sync"
    back = fo_stack.failover_db("peakready-db-1")
    assert back["to"] == "peakready-db-1" and back["duration_s"] < 10
    base = f"http://127.0.0.1:{fo_stack.lb_port}"
    s = requests.Session()
    deadline = time.monotonic() + 10
    while True:  # the storefront finds the new writer by itself
        resp = s.post(f"{base}/api/login", json={"email": "back@example.com"}, timeout=5)
        ok = resp.status_code == 200 and \
            s.post(f"{base}/api/cart/items", json={"sku": "SKU-00100", "qty": 1},
                   timeout=5).status_code == 200 and \
            s.post(f"{base}/api/checkout", timeout=5).status_code == 200
        if ok:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with pytest.raises(ValueError):
        fo_stack.failover_db("peakready-db-1")  # already the writer


def test_losing_the_redis_primary_keeps_users_logged_in(fo_stack):
    base = f"http://127.0.0.1:{fo_stack.lb_port}"
    shoppers = Shoppers(base, users=8)
    for n in range(8):
        assert shoppers.login(f"early{n}") is not None
    shoppers.start("browse")  # logged-in users reading their carts throughout
    try:
        time.sleep(1.5)
        result = fo_stack.failover_cache()
        time.sleep(3.0)
    finally:
        shoppers.stop()
    assert result["killed"] == "peakready-sessions-001"
    assert result["promoted"] == "peakready-sessions-002"
    roles = {n["name"]: n["role"] for n in fo_stack.cache_nodes()}
    assert roles["peakready-sessions-002"] == "primary"
    lost = [o for o in shoppers.outcomes if o.status == 401]
    assert lost == []  # nobody was logged out
    reads = [o for o in shoppers.outcomes if o.kind == "cart" and o.ts > result["started_at"]]
    assert reads and sum(o.status == 200 for o in reads) / len(reads) > 0.9
    for name, session in shoppers.sessions.items():  # every session survived
        assert session.get(f"{base}/api/cart", timeout=5).status_code == 200, name
    # and a write after the promotion lands on the new primary
    s = shoppers.sessions["early0"]
    assert s.post(f"{base}/api/cart/items", json={"sku": "SKU-00001", "qty": 1},
                  timeout=5).status_code == 200
    t0 = time.monotonic()
    while {n["name"]: n["state"] for n in fo_stack.cache_nodes()}["peakready-sessions-001"] \
            != "running":
        assert time.monotonic() - t0 < 15
        time.sleep(0.1)
    assert fo_stack.cache_nodes()[0]["role"] == "replica"  # the lost node is back as replica


def test_a_down_nodes_port_stays_reserved_for_its_return(fo_stack):
    """While a node is down, no other process can take its port, so it comes back on it
    (a port picked by bind-to-0-then-close could be gone by then)."""
    import socket

    before = fo_stack.cache_nodes()
    replica = next(n for n in before if n["role"] == "replica")
    fo_stack.failover_cache(replica["name"])  # a replica node is lost, and replaced
    grab = socket.socket()
    try:
        with pytest.raises(OSError):
            grab.bind(("127.0.0.1", replica["port"]))
            grab.listen()  # (what a racing server would do with it)
        t0 = time.monotonic()
        while {n["name"]: n["state"] for n in fo_stack.cache_nodes()}[replica["name"]] \
                != "running":
            assert time.monotonic() - t0 < 15, fo_stack.cache_nodes()
            time.sleep(0.1)
    finally:
        grab.close()
    after = {n["name"]: n for n in fo_stack.cache_nodes()}
    assert after[replica["name"]]["port"] == replica["port"]
    assert after[replica["name"]]["alive"]
