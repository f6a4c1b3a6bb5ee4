"""What lands in the run folder: both workers' samples matching what the storefront served,
orders the storefront can look up, session loss marked, and shards that survive SIGKILL."""

import json
import time

import pandas as pd
import pyarrow.parquet as pq
from loadkit import wait_for, write_profile

from peakready import runfolder, runfolder_schema
from peakready.load import LoadSettings, read_live, start_load
from peakready.load.summary import read_samples


def test_two_workers_samples_equal_requests_served_orders_and_sessions(tmp_path, shop, handles):
    profile = write_profile(tmp_path / "p.csv", [(0, 30), (10, 30)])
    run_dir = runfolder.create(tmp_path / "reports", label="w2")
    handle = start_load(LoadSettings(host=shop.url, profile=profile, workers=2,
                                     extra_args=["--think-scale", "0"], drain_s=3), run_dir)
    handles.append(handle)
    assert len(handle.pids) == 3
    wait_for(lambda: read_live(run_dir).get("elapsed_s", 0) >= 5, timeout=60)
    shop.post("/_admin/drop-sessions", {})  # like losing the session cache node
    dropped_at = time.time()
    assert handle.wait(timeout=60) == 0

    samples = read_samples(run_dir)
    assert set(samples["worker"]) == {"w0", "w1"}
    # the storefront's own count (less start_load's reachability GET /health): Locust's
    # master CSV can miss a worker's last stats report
    assert len(samples) == shop.requests_served() - 1 == 300  # every arrival, no more, no less
    assert {p.name.split("-")[0] for p in (run_dir / "samples").glob("*.parquet")} == {"w0", "w1"}
    for shard in (run_dir / "samples").glob("*.parquet"):  # the real writer keeps the contract
        assert runfolder_schema.sample_drift(pq.read_schema(shard)) == []

    lost = samples[samples["error"].str.startswith("session lost")]
    assert len(lost) > 0 and (lost["status"] == 401).all() and (lost["ts"] >= dropped_at - 1).all()
    relogin = samples[(samples["name"] == "/api/login") & samples["ok"]
                      & (samples["ts"] > lost["ts"].min())]
    assert len(relogin) > 0  # shoppers logged in again

    orders = [json.loads(line) for p in sorted((run_dir / "orders").glob("*.jsonl"))
              for line in p.read_text().splitlines()]
    assert orders, "no order confirmed in 10 s of campaign traffic"
    assert {o["worker"] for o in orders} <= {"w0", "w1"}
    for order in orders:
        assert shop.get(f"/api/orders/{order['order_id']}")[0] == 200
    checkouts = samples[(samples["name"] == "/api/checkout") & (samples["status"] == 200)]
    assert len(checkouts) == len(orders)

    live = read_live(run_dir)
    assert live["done"] is True and live["windows"]["10"]["requests"] > 0
    run = runfolder.read_run_json(run_dir)
    assert run["load"]["exit_code"] == 0 and run["load"]["user_cap_hit"] is False
    assert (run_dir / "locust" / "report.html").exists()
    assert json.loads((run_dir / "settings.json").read_text())["workers"] == 2


def test_sigkill_leaves_readable_shards_up_to_the_last_seconds(tmp_path, shop, handles):
    profile = write_profile(tmp_path / "p.csv", [(0, 25), (60, 25)])
    run_dir = runfolder.create(tmp_path / "reports", label="kill")
    handle = start_load(LoadSettings(host=shop.url, profile=profile, shard_seconds=2,
                                     extra_args=["--think-scale", "0"]), run_dir)
    handles.append(handle)
    wait_for(lambda: read_live(run_dir).get("elapsed_s", 0) >= 8, timeout=60)
    killed_at = time.time()
    handle.kill()

    shards = sorted((run_dir / "samples").glob("*.parquet"))
    assert len(shards) >= 3
    tables = [pq.read_table(s) for s in shards]  # every visible shard is complete
    samples = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    t0 = samples["intended_ts"].min()
    assert samples["ts"].max() >= killed_at - 4  # at most the last few seconds are lost
    covered = samples["ts"].max() - t0
    assert len(samples) >= 25 * covered - 25  # and everything before that is there


def test_user_cap_is_reported_and_the_lag_shows_in_intended_ts(tmp_path, shop, handles):
    shop.set_latency(500)  # 20 rps x 0.5 s needs ~10 users; allow only 4
    profile = write_profile(tmp_path / "p.csv", [(0, 20), (6, 20)])
    run_dir = runfolder.create(tmp_path / "reports", label="cap")
    handle = start_load(LoadSettings(host=shop.url, profile=profile, max_users=4, drain_s=2,
                                     extra_args=["--think-scale", "0"]), run_dir)
    handles.append(handle)
    live = wait_for(lambda: (s := read_live(run_dir)).get("user_cap_hit") and s, timeout=60)
    assert live["users"] <= 4 and live["user_cap"] == 4 and live["target_rps"] == 20
    handle.wait(timeout=60)
    assert runfolder.read_run_json(run_dir)["load"]["user_cap_hit"] is True
    samples = read_samples(run_dir)
    lag = samples["ts"] - samples["intended_ts"]
    assert lag.max() > 2.0  # 4 users serve 8 req/s of the 20 due: arrivals queue up
    assert samples["user"].nunique() <= 4


def test_graceful_stop_of_a_distributed_run_keeps_every_sample(tmp_path, shop, handles):
    profile = write_profile(tmp_path / "p.csv", [(0, 20), (120, 20)])
    run_dir = runfolder.create(tmp_path / "reports", label="stop")
    handle = start_load(LoadSettings(host=shop.url, profile=profile, workers=2, drain_s=2,
                                     extra_args=["--think-scale", "0"]), run_dir)
    handles.append(handle)
    wait_for(lambda: read_live(run_dir).get("elapsed_s", 0) >= 4, timeout=60)
    handle.stop()  # what a stop condition or Ctrl-C does: long before the profile ends
    assert all(p.poll() is not None for p in (handle.main, *handle.workers))
    samples = read_samples(run_dir)
    assert set(samples["worker"]) == {"w0", "w1"}
    # every request the storefront answered has its sample (a request cut at the stop may
    # have reached it without an answer); Locust's master CSV can miss a worker's last report
    served = shop.requests_served() - 1  # less start_load's reachability GET /health
    assert served - 4 <= len(samples) <= served and len(samples) > 40
    assert read_live(run_dir)["done"] is True
    assert (run_dir / "locust" / "report.html").exists()
