"""Past its capacity an instance queues: latency climbs and its busy fraction nears 1."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sandbox_kit import running_stack

pytestmark = pytest.mark.spawns  # starts its own stack


def test_requests_past_capacity_queue_and_busy_fraction_nears_one(tmp_path):
    # one instance, 2 workers, product detail held 100 ms: capacity ~20 req/s
    config = {"workers": 2, "costs_ms": {"product": 100}}
    with running_stack(tmp_path, 1, storefront=config) as stack:
        url = f"http://127.0.0.1:{stack.lb_port}/api/products/SKU-00001"

        def timed(_: int) -> float:
            t0 = time.monotonic()
            assert requests.get(url, timeout=10).status_code == 200
            return time.monotonic() - t0

        alone = timed(0)
        assert 0.1 <= alone < 0.5
        with ThreadPoolExecutor(20) as pool:  # 20 at once: 10 rounds of 2 workers
            burst = sorted(pool.map(timed, range(20)))
        assert burst[0] < 0.5  # the first ones are served at once
        assert burst[-1] >= 0.9  # the last waited for ~9 rounds ahead of it
        stats_url = f"{stack.instances()[0]['url']}/_sandbox/stats"
        before = requests.get(stats_url, timeout=5).json()
        t0 = time.monotonic()
        with ThreadPoolExecutor(10) as pool:  # keep it saturated for ~2 s
            list(pool.map(timed, range(40)))
        wall = time.monotonic() - t0
        after = requests.get(stats_url, timeout=5).json()
        busy = (after["busy_seconds"] - before["busy_seconds"]) / (after["workers"] * wall)
        assert busy > 0.85  # both workers held nearly all the time
        assert after["served"] - before["served"] == 40
        time.sleep(1.2)
        assert stack.instances()[0]["busy"] > 0.3  # the rolling view the stack reports
