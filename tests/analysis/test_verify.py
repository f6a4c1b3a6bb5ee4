"""verify_orders against a real HTTP storefront (the test shop of tests/load, gevent WSGI on
127.0.0.1, port 0): confirmed orders are found, a lost one fails the integrity check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from analysis import analyze
from analysis.synthetic import Spec, write_run
from peakready.errors import BadInput
from peakready.verify import verify_orders

SHOP = Path(__file__).resolve().parents[1] / "load" / "shop.py"


@pytest.fixture
def shop():
    proc = subprocess.Popen([sys.executable, str(SHOP), "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def place_order(base: str) -> str:
    with requests.Session() as s:
        s.post(f"{base}/api/login", json={"email": "a@example.com"}, timeout=5).raise_for_status()
        first = s.get(f"{base}/api/products", timeout=5).json()["items"][0]
        sku = first["sku"] if isinstance(first, dict) else first
        s.post(f"{base}/api/cart/items", json={"sku": sku, "qty": 1}, timeout=5)
        r = s.post(f"{base}/api/checkout", timeout=5)
        r.raise_for_status()
        return r.json()["order_id"]


def test_confirmed_orders_are_found_and_a_lost_one_fails(shop, tmp_path):
    run = write_run(tmp_path / "run", Spec(verify=False, checks={"integrity": {"orders": True}},
                                           profile=[(0, 5), (20, 5)], phases=None))
    placed = [place_order(shop) for _ in range(3)]
    with (run / "orders" / "w0.jsonl").open("w") as fh:
        for i, order_id in enumerate([*placed, "o-never-existed"]):
            fh.write(json.dumps({"order_id": order_id, "ts": 1.0 + i, "user": "u", "worker": "w"})
                     + "\n")
        fh.write('{"order_id": "torn')  # a writer killed mid-line
    checked = verify_orders(run, shop, timeout_s=5)
    assert list(checked.columns) == ["order_id", "confirmed_ts", "found", "status", "checked_ts"]
    by_id = checked.set_index("order_id")
    assert by_id.loc[placed, "found"].all() and (by_id.loc[placed, "status"] == 200).all()
    assert not by_id.loc["o-never-existed", "found"]
    assert by_id.loc["o-never-existed", "status"] == 404
    assert (run / "integrity" / "orders.parquet").exists()
    verdict = analyze(run)
    integrity = verdict["checks"][0]
    assert integrity["verdict"] == "fail" and "o-never-existed" in integrity["reason"]


def test_unreachable_storefront_is_recorded_not_hidden(tmp_path):
    run = write_run(tmp_path / "run", Spec(verify=False, profile=[(0, 5), (20, 5)]))
    checked = verify_orders(run, "http://127.0.0.1:9", timeout_s=0.5)  # discard port: refused
    assert len(checked) > 0 and not checked["found"].any() and (checked["status"] == 0).all()
    verdict = analyze(run)
    integrity = [c for c in verdict["checks"] if c["name"].startswith("data integrity")][0]
    assert integrity["verdict"] == "fail" and "lookups failed" in integrity["reason"]
    with pytest.raises(BadInput):
        verify_orders(run, "127.0.0.1:80")


def test_lookups_are_rate_limited_and_report_progress(shop, tmp_path):
    run = write_run(tmp_path / "run", Spec(verify=False, profile=[(0, 5), (20, 5)]))
    with (run / "orders" / "w0.jsonl").open("w") as fh:
        for i in range(12):
            fh.write(json.dumps({"order_id": f"o-{i}", "ts": 1.0 + i, "user": "u",
                                 "worker": "w"}) + "\n")
    seen: list[tuple[int, int]] = []
    started = time.monotonic()
    checked = verify_orders(run, shop, timeout_s=5, concurrency=4, max_rps=20.0,
                            progress=lambda done, total: seen.append((done, total)),
                            progress_every_s=0.2)
    took = time.monotonic() - started
    assert len(checked) == 12 and (checked["status"] == 404).all()
    assert took >= 11 / 20.0 - 0.05  # 12 lookups at 20/s: never a burst
    assert seen[-1] == (12, 12) and len(seen) >= 2  # progress during and at the end
