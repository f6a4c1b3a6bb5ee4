"""The bundled shopper scenarios run against the sandbox unchanged (issue 3, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import requests
from sandbox_kit import running_stack

from peakready.cli import main

pytestmark = pytest.mark.spawns  # starts its own stack and Locust

PROFILE = Path(__file__).resolve().parents[2] / "scenarios" / "profiles" / "demo.csv"


def test_bundled_locust_journeys_run_error_free_and_their_orders_exist(tmp_path):
    reports = tmp_path / "reports"
    with running_stack(tmp_path / "sbx") as stack:
        url = f"http://127.0.0.1:{stack.lb_port}"
        code = main(["load", "--profile", str(PROFILE), "--host", url,
                     "--speed", "4", "--duration", "12", "--reports-dir", str(reports),
                     "--label", "sandbox"])
        assert code == 0
        run_dir = next(reports.iterdir())
        samples = pd.concat(pd.read_parquet(p) for p in (run_dir / "samples").glob("*.parquet"))
        assert len(samples) > 50
        assert samples["ok"].all(), samples.loc[~samples["ok"], ["name", "status", "error"]]
        endpoints = set(samples["name"])
        assert {"/", "/api/products/[sku]", "/api/login"} <= endpoints
        orders = [json.loads(line)["order_id"] for p in (run_dir / "orders").glob("*.jsonl")
                  for line in p.read_text().splitlines() if line.strip()]
        for order_id in orders:
            assert requests.get(f"{url}/api/orders/{order_id}", timeout=5).status_code == 200
