"""The open model holds the arrival rate when the storefront slows down; a closed model
(fixed users, run with --closed-model) collapses. Both run at once against their own
storefront whose latency jumps from 5 ms to 2 s after 10 s."""

import pandas as pd
import pytest
from loadkit import HERE, wait_for, write_profile

from peakready import runfolder
from peakready.load import LoadSettings, read_live, start_load
from peakready.load.summary import read_samples

RATE, DURATION, JUMP_AT = 40.0, 30.0, 10.0


def rate_per_window(samples: pd.DataFrame, t0: float) -> pd.Series:
    """Requests *started* per second in consecutive 10-s windows after t0."""
    return (samples.assign(window=((samples["ts"] - t0) // 10).astype(int))
            .groupby("window").size().div(10.0))


@pytest.mark.slow
def test_open_model_holds_rate_through_latency_jump_closed_model_collapses(
        tmp_path, make_shop, handles):
    open_shop, closed_shop = make_shop(), make_shop()
    for shop in (open_shop, closed_shop):
        shop.set_latency(5)
    profile = write_profile(tmp_path / "flat.csv", [(0, RATE), (DURATION, RATE)])
    open_dir = runfolder.create(tmp_path / "reports", label="open")
    closed_dir = runfolder.create(tmp_path / "reports", label="closed")
    handles.append(start_load(LoadSettings(
        host=open_shop.url, profile=profile, extra_args=["--think-scale", "0"], drain_s=5),
        open_dir))
    handles.append(start_load(LoadSettings(
        host=closed_shop.url, profile=profile, locustfile=HERE / "closed_locustfile.py",
        closed_model=True, users=20, drain_s=5), closed_dir))

    for run_dir, shop in ((open_dir, open_shop), (closed_dir, closed_shop)):
        wait_for(lambda d=run_dir: read_live(d).get("elapsed_s", 0) >= JUMP_AT, timeout=60)
        shop.set_latency(2000)
    assert [h.wait(timeout=DURATION + 60) for h in handles] == [0, 0]

    opened = read_samples(open_dir)
    t0 = opened["intended_ts"].min()
    windows = rate_per_window(opened, t0)
    after_warmup = windows.loc[1:2]
    assert len(after_warmup) == 2
    assert ((after_warmup - RATE).abs() <= 0.05 * RATE).all(), windows.to_dict()
    slow = opened[opened["ts"] >= t0 + 20]
    assert slow["rt_ms"].median() > 1500  # the storefront really was slow
    assert slow["ok"].all()
    load = runfolder.read_run_json(open_dir)["load"]
    assert load["max_users_seen"] >= 60 and not load["user_cap_hit"]  # the pool grew

    closed = read_samples(closed_dir)
    closed_windows = rate_per_window(closed, closed["ts"].min())
    assert closed_windows.loc[0] > 0.8 * RATE  # it did keep up while the shop was fast
    assert closed_windows.loc[2] < 0.5 * RATE, closed_windows.to_dict()  # and then collapsed
