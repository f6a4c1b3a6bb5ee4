"""ALB semantics of the balancer, against real storefront processes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sandbox_kit import FAST, running_stack

# product detail is held 1 s (requests in flight long enough to kill an instance under
# them); search 4 s, past the 1.5 s idle timeout (-> 504)
SLOW = {"workers": 16, "costs_ms": {"product": 1000, "search": 4000}}
TIMING = replace(FAST, idle_timeout_s=1.5)


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("lb"), 2, TIMING, SLOW) as st:
        yield st


def _get(url: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    resp = requests.get(url, timeout=15)
    return resp.status_code, resp.headers.get("X-Instance-Id", ""), time.monotonic() - t0


def test_killing_an_instance_gives_502_to_its_in_flight_requests_only(slow_stack):
    base = f"http://127.0.0.1:{slow_stack.lb_port}"
    slow_stack.lb_take_stats()
    victim = slow_stack.instances()[0]["id"]
    with ThreadPoolExecutor(8) as pool:
        in_flight = [pool.submit(_get, f"{base}/api/products/SKU-00001") for _ in range(8)]
        time.sleep(0.6)  # all 8 are inside the instances now (each held 1 s)
        killed_at = time.monotonic()
        slow_stack.kill_instance(victim)
        # new requests right after the kill, before any health check noticed it
        after = [pool.submit(_get, f"{base}/health") for _ in range(6)]
        results = [f.result() for f in in_flight]
        after_results = [f.result() for f in after]
    statuses = sorted(s for s, _, _ in results)
    # round robin put 4 on each; on a loaded machine one may have arrived after the kill
    # (then it was retried on the live target, since nothing had been sent)
    assert 3 <= statuses.count(502) <= 4 and statuses.count(502) + statuses.count(200) == 8
    assert all(iid != victim for s, iid, _ in results if s == 200)
    assert [s for s, _, _ in after_results] == [200] * 6  # the dead target is skipped
    # unhealthy within unhealthy_threshold checks (+ one interval and a timeout of slack)
    limit = TIMING.unhealthy_threshold * TIMING.health_interval_s + TIMING.health_timeout_s \
        + TIMING.health_interval_s
    while slow_stack.target_health()[victim] != "unhealthy":
        assert time.monotonic() - killed_at < limit + 1.0, slow_stack.targets()
        time.sleep(0.05)
    stats = slow_stack.lb_take_stats()
    assert stats["lb"]["elb_502"] == statuses.count(502)
    assert stats["targets"][victim]["target_connection_errors"] >= 1
    assert stats["lb"]["healthy_host_count"] == 1 and stats["lb"]["unhealthy_host_count"] == 1


def test_no_response_within_idle_timeout_is_504(slow_stack):
    base = f"http://127.0.0.1:{slow_stack.lb_port}"
    slow_stack.lb_take_stats()
    status, _, took = _get(f"{base}/api/search?q=boot")
    assert status == 504
    assert TIMING.idle_timeout_s <= took < TIMING.idle_timeout_s + 3.0  # not the 4 s cost
    assert slow_stack.lb_take_stats()["lb"]["elb_504"] == 1


def test_stats_and_access_log_measure_every_request(slow_stack):
    base = f"http://127.0.0.1:{slow_stack.lb_port}"
    slow_stack.lb_take_stats()
    for _ in range(5):
        assert requests.get(f"{base}/api/nope", timeout=5).status_code == 404
    time.sleep(1.2)  # the access log is flushed every second
    stats = slow_stack.lb_take_stats()
    assert stats["lb"]["requests"] == 5 and stats["lb"]["target_4xx"] == 5
    assert len(stats["lb"]["response_times"]) == 5
    assert sum(t["requests"] for t in stats["targets"].values()) == 5
    assert all(0 < rt < 1 for rt in stats["lb"]["response_times"])
    lb = next(c for c in slow_stack.status()["components"] if c["kind"] == "loadbalancer")
    log = Path(lb["access_log"]).read_text().splitlines()
    assert sum(1 for line in log if '"GET http://' in line and "/api/nope" in line) == 5
    assert slow_stack.lb_take_stats()["lb"]["requests"] == 0  # a take starts a new period


def test_deregistration_drains_then_no_healthy_target_is_503(slow_stack):
    base = f"http://127.0.0.1:{slow_stack.lb_port}"
    # the test above killed one of the two: its health checks turn it unhealthy (slower on
    # a loaded machine), which leaves one healthy target to deregister
    deadline = time.monotonic() + 20
    while True:
        healthy = [i for i, s in slow_stack.target_health().items() if s == "healthy"]
        if len(healthy) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(healthy) == 1
    with ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(_get, f"{base}/api/products/SKU-00002")
        time.sleep(0.3)
        slow_stack.deregister_target(healthy[0])
        assert slow_stack.target_health()[healthy[0]] == "draining"
        assert _get(f"{base}/health")[0] == 503  # nothing healthy left
        assert in_flight.result()[0] == 200  # the in-flight request finished
    time.sleep(0.2)
    assert healthy[0] not in slow_stack.target_health()  # drained: gone
    assert slow_stack.lb_take_stats()["lb"]["elb_503"] >= 1


def test_a_new_target_is_initial_then_healthy_after_its_boot_delay(slow_stack):
    iid = "i-0123456789abcdef0"
    slow_stack.launch_instance(iid)
    slow_stack.register_target(iid)
    assert slow_stack.target_health()[iid] in ("initial", "unhealthy")
    t0 = time.monotonic()
    while slow_stack.target_health()[iid] != "healthy":
        assert time.monotonic() - t0 < 10
        time.sleep(0.05)
    base = f"http://127.0.0.1:{slow_stack.lb_port}"
    assert _get(f"{base}/health")[1] == iid
