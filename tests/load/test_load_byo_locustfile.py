"""Bring your own locustfile: files written closed (wait_time on the user or on a TaskSet,
Sequential and Markov task sets, on_start logins) run unchanged as an open model, hold
the profile's rate while the storefront slows from 5 ms to 2 s, record intended_ts and
orders; with --closed-model they keep their own pacing and say so everywhere."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from loadkit import HERE, wait_for, write_profile

from analysis import report
from analysis.load import load_run
from peakready import runfolder
from peakready.load import LoadSettings, read_live, start_load
from peakready.load.summary import format_summary, read_samples, summarize
from peakready.run.view import line, snapshot_from_live

BYO = HERE / "byo"
RATE, DURATION, SLOW_AT = 20.0, 30.0, 12.0
# style -> settings beyond the defaults; the Markov file also runs distributed
STYLES = {
    "plain_between": {},
    "fast_pacing": {},
    "sequential_login": {"order_request": "POST /api/checkout", "order_field": "order_id"},
    "markov_store": {"workers": 2},
}
ON_START = {"/api/login"}  # requests sent by on_start: once per user, not arrivals
CLOSED_RATE, CLOSED_S, CLOSED_USERS = 10.0, 8.0, 4


def starts_per_window(samples: pd.DataFrame, t0: float) -> pd.Series:
    """Requests *started* per second in consecutive 10-s windows after t0."""
    window = ((samples["ts"] - t0) // 10).astype(int)
    return samples.groupby(window).size().div(10.0)


def start_all(jobs: list[tuple[LoadSettings, object, bool]]) -> list:
    """start_load for several runs at once (a check imports the locustfile in a child
    process; the closed runs reuse the files the open runs checked)."""
    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(lambda job: start_load(*job), jobs))


@pytest.mark.slow
def test_closed_style_locustfiles_run_as_open_model_and_with_closed_model(
        tmp_path, make_shop, handles):
    flat = write_profile(tmp_path / "flat.csv", [(0, RATE), (DURATION, RATE)])
    short = write_profile(tmp_path / "short.csv", [(0, CLOSED_RATE), (CLOSED_S, CLOSED_RATE)])
    shop, closed_shop = make_shop(), make_shop()  # every open run on one shop that slows
    shop.set_latency(5)
    jobs = [(LoadSettings(host=shop.url, profile=flat, drain_s=4,
                          locustfile=BYO / f"{style}.py", **extra),
             runfolder.create(tmp_path / "open", label=style), True)
            for style, extra in STYLES.items()]
    started = start_all(jobs)
    handles.extend(started)
    open_runs = dict(zip(STYLES, started, strict=True))

    # slow the shop down once the first open run is SLOW_AT s in (the others are a
    # second or two behind: mid-run for all of them)
    wait_for(lambda: max(read_live(h.run_dir).get("elapsed_s", 0)
                         for h in open_runs.values()) >= SLOW_AT, timeout=120, step=0.1)
    shop.set_latency(2000)
    slowed_at = time.time()
    for handle in open_runs.values():
        assert read_live(handle.run_dir).get("elapsed_s", 0) >= 5  # all well under way
    assert [h.wait(timeout=DURATION + 90) for h in started] == [0] * len(started)
    # the closed runs after the open ones: five Locust processes at a time, not nine, so
    # the open runs' rate is not judged on a machine starved by the test itself
    closed_runs = dict(zip(STYLES, start_all([
        (LoadSettings(host=closed_shop.url, profile=short, drain_s=2,
                      locustfile=BYO / f"{style}.py", closed_model=True, users=CLOSED_USERS),
         runfolder.create(tmp_path / "closed", label=style), False) for style in STYLES]),
        strict=True))
    handles.extend(closed_runs.values())
    assert [h.wait(timeout=CLOSED_S + 90) for h in closed_runs.values()] == [0] * len(STYLES)

    for style, handle in open_runs.items():
        samples = read_samples(handle.run_dir)
        t0 = samples["intended_ts"].min()
        tasks = samples[~samples["name"].isin(ON_START)]
        windows = starts_per_window(tasks, t0)
        assert list(windows.index) == [0, 1, 2], (style, windows.to_dict())
        assert ((windows - RATE).abs() <= 0.05 * RATE).all(), (style, windows.to_dict())
        assert len(tasks) == RATE * DURATION, style  # one request per task, one task per arrival
        # each task started on its own token: intended_ts is arrival k of the schedule
        # (k / RATE after t0), once each (not ts: a start can equal its due time exactly)
        k = (tasks["intended_ts"] - tasks["intended_ts"].min()) * RATE
        assert ((k - k.round()).abs() < 1e-3).all() and k.round().is_unique, style
        assert samples["intended_ts"].notna().all() and (samples["user"] != "").all(), style
        # every request of any HttpUser/FastHttpUser file carries its own X-Request-Id
        assert samples["request_id"].str.fullmatch(r"[0-9a-f]{32}").all(), style
        assert samples["request_id"].is_unique, style
        slow = tasks[tasks["ts"] >= slowed_at + 3]
        assert slow["rt_ms"].median() > 1500, style  # the storefront really was slow
        assert slowed_at - t0 < DURATION - 10, style  # and it slowed with >= 10 s to go
        settings = json.loads((handle.run_dir / "settings.json").read_text())
        assert settings["load_model"] == "open", style
        assert runfolder.read_run_json(handle.run_dir)["load"]["model"] == "open", style

    seq = read_samples(open_runs["sequential_login"].run_dir)
    logins = seq[seq["name"] == "/api/login"]
    assert len(logins) == logins["user"].nunique() == seq["user"].nunique()  # once per user
    orders = [json.loads(x) for p in (open_runs["sequential_login"].run_dir / "orders").glob(
        "*.jsonl") for x in p.read_text().splitlines()]
    confirmed = seq[(seq["name"] == "/api/checkout") & (seq["status"] == 200)]
    assert orders and len(orders) == len(confirmed)  # recognised without record_order()
    for order in orders[:20]:
        assert shop.get(f"/api/orders/{order['order_id']}")[0] == 200
    markov = read_samples(open_runs["markov_store"].run_dir)
    assert set(markov["worker"]) == {"w0", "w1"}

    for style, handle in closed_runs.items():
        run_dir = handle.run_dir
        samples = read_samples(run_dir)
        assert len(samples) > 0, style
        # the file's own think time paces 4 users well below the profile's 10 rps
        assert len(samples) < 0.6 * CLOSED_RATE * CLOSED_S, (style, len(samples))
        assert (samples["intended_ts"] == samples["ts"]).all(), style  # no arrival schedule
        assert json.loads((run_dir / "settings.json").read_text())["load_model"] == "closed"
        assert runfolder.read_run_json(run_dir)["load"]["model"] == "closed", style
        live = read_live(run_dir)
        assert live["load_model"] == "closed", style
        assert "CLOSED-MODEL" in line(snapshot_from_live(live)), style
        assert "CLOSED-MODEL" in format_summary(summarize(run_dir)), style
        assert load_run(run_dir).settings["load_model"] == "closed"  # what the report reads
    assert load_run(open_runs["plain_between"].run_dir).settings["load_model"] == "open"


def verdict_of(model: str) -> dict:
    return {"load_model": model, "verdict": "pass", "run_id": "r", "status": "completed",
            "duration_s": 10.0, "summary": {"checks": 0}, "checks": [], "problems": []}


def test_the_report_and_summary_say_when_the_load_was_closed_model():
    closed = report.html(verdict_of("closed"), {"figures/timeline.png": b""})
    assert 'id="load-model"' in closed and "Coordinated omission possible" in closed
    assert "Closed-model load" in report.summary_md(verdict_of("closed"))
    assert 'id="load-model"' not in report.html(verdict_of("open"), {})
    assert "Closed-model" not in report.summary_md(verdict_of("open"))
