"""Checks on generated run folders whose truth is known by construction."""

from __future__ import annotations

import math

import pytest

from analysis import checks, load_run, phases
from analysis.synthetic import Fault, Scaling

SLO = {"window_s": 1, "windows": 3, "max_s": 30, "p95_ms": 800, "error_rate": 0.02}

ONE = {"GET /api/products": (1.0, 50.0, 0.4)}
Z95 = 1.6448536269514722


def evaluate(run_dir, plan_checks):
    return checks.evaluate(checks.context(load_run(run_dir)), plan_checks)


def by_name(results):
    return {r["name"]: r for r in results}


def test_p95_per_phase_matches_the_planted_distribution(make_run):
    # peak is 3x slower: lognormal p95 = median * exp(1.645 sigma) * factor
    run = make_run(endpoints=ONE, slow=[(60, 150, 3.0)], seed=3,
                   profile=[(0, 60), (30, 60), (60, 120), (150, 120), (160, 60), (210, 60)])
    res = by_name(evaluate(run, {"latency": [{"endpoint": "*", "phase": "*", "percentile": 95,
                                              "max_ms": 200}]}))
    truth = 50.0 * math.exp(0.4 * Z95)
    assert res["latency p95 * in warm-up"]["measured"] == pytest.approx(truth, rel=0.06)
    assert res["latency p95 * in recovery"]["measured"] == pytest.approx(truth, rel=0.06)
    assert res["latency p95 * in peak"]["measured"] == pytest.approx(3 * truth, rel=0.06)
    assert res["latency p95 * in peak"]["verdict"] == "fail"
    assert res["latency p95 * in warm-up"]["verdict"] == "pass"
    assert res["latency p95 * in peak"]["window"] == {"name": "peak", "start_s": 60.0,
                                                      "end_s": 150.0}


def test_corrected_latency_shows_the_schedule_lag(make_run):
    run = make_run(endpoints=ONE, lag=[(60, 150, 500.0)])
    res = by_name(evaluate(run, {"latency": [
        {"endpoint": "*", "phase": "peak", "percentile": 50, "max_ms": 300},
        {"endpoint": "*", "phase": "peak", "percentile": 50, "max_ms": 300, "corrected": True}]}))
    assert res["latency p50 * in peak"]["verdict"] == "pass"
    corrected = res["latency p50 corrected * in peak"]
    assert corrected["verdict"] == "fail"
    assert corrected["measured"] == pytest.approx(550.0, rel=0.05)


@pytest.mark.parametrize(("start", "window_s"), [(80.0, 1.0), (80.3, 1.0), (95.7, 0.5)])
def test_two_second_outage_recovery_within_one_window(make_run, start, window_s):
    run = make_run(faults=[Fault("kill-db", "db", start, start + 2.0)])
    res = by_name(evaluate(run, {"recovery": {**SLO, "window_s": window_s}}))
    rec = res["recovery after kill-db"]
    assert rec["verdict"] == "pass"
    assert abs(rec["measured"] - 2.0) <= window_s
    assert rec["evidence"]["window_source"] == "infrastructure events"


def test_fault_window_comes_from_infrastructure_events_else_chaos(make_run):
    run = load_run(make_run(faults=[Fault("kill-db", "db", 80, 84), Fault("x", "other", 120, 121)]))
    frame = phases.faults(run).set_index("name")
    assert frame.loc["kill-db", "start_s"] == pytest.approx(80.0)
    assert frame.loc["kill-db", "end_s"] == pytest.approx(84.0)
    assert frame.loc["kill-db", "source"] == "infrastructure events"
    assert frame.loc["x", "source"] == "chaos events"  # no infra event for this kind
    assert frame.loc["x", "start_s"] == pytest.approx(119.7)


def test_outage_that_never_recovers_fails(make_run):
    run = make_run(faults=[Fault("kill-db", "db", 150, 400)])
    rec = by_name(evaluate(run, {"recovery": SLO}))["recovery after kill-db"]
    assert rec["verdict"] == "fail" and rec["measured"] is None
    assert "not back within SLO" in rec["reason"]


def test_error_budget_burn_rate_of_a_full_outage(make_run):
    run = make_run(faults=[Fault("kill-db", "db", 80, 82)])
    res = by_name(evaluate(run, {"recovery": SLO, "error_budget": {
        "slo": 0.99, "period_days": 30, "max_burn_rate": 14.4}}))
    budget = res["error budget kill-db"]
    assert budget["verdict"] == "fail"
    assert budget["measured"] == pytest.approx(100.0, rel=0.02)  # 100% errors / 1% budget
    assert budget["evidence"]["budget_used"] == pytest.approx(100 * 2 / (30 * 86400), rel=0.05)


def test_time_to_detect(make_run):
    run = make_run(faults=[Fault("a", "db", 80, 82, detect_s=7.0),
                           Fault("b", "cache", 150, 151, outage=False, detect_s=None)])
    res = by_name(evaluate(run, {"time_to_detect": {"max_s": 5, "alarms": ["peakready-web-5xx"]}}))
    assert res["time to detect a"]["measured"] == pytest.approx(7.0)
    assert res["time to detect a"]["verdict"] == "fail"
    # the alarm of fault a going back to OK is not a detection of fault b
    assert res["time to detect b"]["verdict"] == "fail"


def test_time_to_detect_judges_only_the_named_faults(make_run):
    run = make_run(faults=[Fault("a", "db", 80, 82, detect_s=3.0),
                           Fault("b", "cache", 150, 151, outage=False, detect_s=None)])
    res = by_name(evaluate(run, {"time_to_detect": {"max_s": 5, "faults": ["a"]}}))
    assert set(res) == {"time to detect a"}
    assert res["time to detect a"]["verdict"] == "pass"
    assert res["time to detect a"]["measured"] == pytest.approx(3.0)
    none = evaluate(run, {"time_to_detect": {"max_s": 5, "faults": ["not-in-this-run"]}})
    assert none[0]["verdict"] == "skipped" and "faults named" in none[0]["reason"]
    assert checks.validate({"time_to_detect": {"max_s": 5, "faults": "a"}})


def test_time_to_detect_skipped_without_alarm_history(make_run, tmp_path):
    run = load_run(make_run(faults=[Fault("a", "db", 80, 82, detect_s=None)]))
    run.plan["target"]["alarms"] = []
    res = checks.evaluate(checks.context(run), {"time_to_detect": {"max_s": 5}})
    assert res[0]["verdict"] == "skipped" and "no alarm history" in res[0]["reason"]


def test_scale_out_lag_chain(make_run):
    run = make_run(scaling=[Scaling(alarm_s=40, desired_s=45, in_service_s=55, healthy_s=61)])
    res = evaluate(run, {"scale_out": {"max_lag_s": 20}})[0]
    ev = res["evidence"]
    assert ev["load_rise_s"] == pytest.approx(33.0, abs=1.0)  # 10% into the 20->80 ramp
    assert ev["alarm_s"] == pytest.approx(40.0)
    assert ev["desired_s"] == pytest.approx(45.0, abs=5)
    assert ev["in_service_s"] == pytest.approx(55.0, abs=5)  # 5 s metric period
    assert ev["healthy_s"] == pytest.approx(61.0, abs=5)
    assert res["verdict"] == "fail" and res["measured"] > 20


def test_scale_out_that_never_happens_fails_and_flat_load_is_skipped(make_run):
    res = evaluate(make_run("a"), {"scale_out": {"max_lag_s": 60}})[0]
    assert res["verdict"] == "fail" and "never scaled out" in res["reason"]
    flat = evaluate(make_run("b", profile=[(0, 30), (100, 30)], phases=None),
                    {"scale_out": {"max_lag_s": 60}})[0]
    assert flat["verdict"] == "skipped"


def test_missing_order_fails_integrity(make_run):
    fails = by_name(evaluate(make_run("a", lost_orders=1), {"integrity": {"orders": True}}))
    res = fails["data integrity: confirmed orders"]
    assert res["verdict"] == "fail" and res["measured"] == 1
    assert res["evidence"]["missing_ids"] and res["evidence"]["missing_ids"][0] in res["reason"]
    ok = by_name(evaluate(make_run("b"), {"integrity": {"orders": True}}))
    assert ok["data integrity: confirmed orders"]["verdict"] == "pass"


def test_orders_never_looked_up_are_skipped_with_the_reason(make_run):
    res = evaluate(make_run(verify=False), {"integrity": {"orders": True}})[0]
    assert res["verdict"] == "skipped" and "not written" in res["reason"]


def test_session_survival_across_cache_failover(make_run):
    run = make_run(faults=[Fault("cache", "cache", 100, 102, outage=False)],
                   session_loss_users=5, users=100, logins=100)
    res = evaluate(run, {"integrity": {"sessions": 0.99}})[0]
    assert res["evidence"]["lost"] == 5 and res["evidence"]["active_users"] == 100
    assert res["measured"] == pytest.approx(0.95) and res["verdict"] == "fail"
    skipped = evaluate(make_run("b"), {"integrity": {"sessions": True}})[0]
    assert skipped["verdict"] == "skipped" and "no cache failover" in skipped["reason"]


def test_capacity_per_instance_on_a_stepped_profile(make_run):
    steps = [(0, 20), (30, 20), (30.01, 40), (60, 40), (60.01, 60), (90, 60)]
    run = make_run(profile=steps, slow=[(60, 90, 20.0)], phases=None, instances=2)
    res = evaluate(run, {"capacity": {"p95_ms": 800, "error_rate": 0.01}})[0]
    assert res["verdict"] == "pass"
    assert res["evidence"]["highest_within_slo"]["offered_rps"] == 40
    assert res["measured"] == pytest.approx(20.0, rel=0.15)  # 40 rps on 2 instances
    broken = make_run("b", faults=[Fault("db", "db", 20, 200, detect_s=None)])
    res = evaluate(broken, {"capacity": {"p95_ms": 800, "error_rate": 0.01}})[0]
    assert res["verdict"] == "fail" and "no plateau" in res["reason"]
    flat = evaluate(make_run("c", profile=[(0, 30), (100, 30)]), {"capacity": {
        "p95_ms": 800, "error_rate": 0.01}})[0]
    assert flat["verdict"] == "skipped" and "does not step" in flat["reason"]


def test_phases_derived_from_the_profile_when_the_plan_has_none(make_run):
    frame = phases.phases(load_run(make_run(phases=None)))
    assert list(frame["name"]) == ["warm-up", "ramp", "peak", "recovery"]
    assert frame["source"].iloc[0] == "profile"
    peak = frame.set_index("name").loc["peak"]
    assert peak["start_s"] == pytest.approx(57.0, abs=1.0)  # within 10% of the top
    assert peak["end_s"] == pytest.approx(151.0, abs=1.0)


def test_instance_fault_lasts_until_the_load_balancer_is_healthy_again(make_run):
    # terminated at 80, replacement launched at 80.5, healthy again from 90 (5 s periods)
    run = load_run(make_run(faults=[Fault("kill-web", "instance", 80, 90, outage=False,
                                          launch_s=80.5)]))
    fault = phases.faults(run).iloc[0]
    assert fault["start_s"] == pytest.approx(80.0)
    assert fault["end_s"] == pytest.approx(90.0)  # not the launch at 80.5


def test_a_later_fault_is_not_blamed_on_an_earlier_one(make_run):
    run = make_run(faults=[Fault("quiet", "instance", 60, 70, outage=False),
                           Fault("loud", "db", 100, 103)])
    res = by_name(evaluate(run, {"recovery": {**SLO, "max_s": 60}}))
    assert res["recovery after quiet"]["measured"] == 0.0
    assert res["recovery after loud"]["measured"] == pytest.approx(3.0, abs=1.0)


def test_binned_quantiles_match_numpy_per_bin():
    import numpy as np

    from analysis.stats import binned_quantiles

    rng = np.random.default_rng(7)
    bins = rng.integers(0, 50, 20_000)  # unsorted on purpose
    values = rng.lognormal(3.0, 1.0, 20_000)
    got = binned_quantiles(bins, values, 52, (0.5, 0.95, 0.99))
    for b in (0, 13, 49):
        expected = np.quantile(values[bins == b], [0.5, 0.95, 0.99])
        assert [got[q][b] for q in (0.5, 0.95, 0.99)] == pytest.approx(expected, rel=1e-9)
    assert np.isnan(got[0.95][51])


def test_unplanned_failover_is_a_fault_but_a_scale_in_is_not(make_run):
    import json

    import pandas as pd

    run_dir = make_run(faults=[Fault("kill-db", "db", 80, 84)])
    events = pd.read_parquet(run_dir / "events.parquet")
    t0 = events["ts"].min() - 79.7  # the fault_start of kill-db is at 79.7 s
    extra = pd.DataFrame([
        (t0 + 80.5, "rds", "db_failover_start", "peakready-db", "{}"),  # same failover twice
        (t0 + 150.0, "elasticache", "cache_failover_start", "peakready-sessions", "{}"),
        (t0 + 153.0, "elasticache", "cache_failover_end", "peakready-sessions", "{}"),
        (t0 + 190.0, "autoscaling", "instance_terminate", "i-scalein",
         json.dumps({"cause": "scale in"}))], columns=events.columns)
    pd.concat([events, extra]).to_parquet(run_dir / "events.parquet", index=False)
    frame = phases.faults(load_run(run_dir))
    assert list(frame["name"]) == ["kill-db", "cache_failover peakready-sessions"]
    unplanned = frame.iloc[1]
    assert (unplanned["start_s"], unplanned["end_s"]) == pytest.approx((150.0, 153.0))
    assert unplanned["status"] == "not injected by this run"


def test_time_zero_is_the_schedule_start_from_live_json(make_run):
    import json

    from analysis.synthetic import T0
    from peakready import runfolder

    run_dir = make_run()
    runfolder.update_run_json(run_dir, load_started_at=T0 - 2.4)  # process start, earlier
    assert load_run(run_dir).t0 == pytest.approx(T0 - 2.4)
    (run_dir / "live.json").write_text(json.dumps({"ts": T0 + 210.5, "elapsed_s": 210.5,
                                                   "done": True}))
    assert load_run(run_dir).t0 == pytest.approx(T0)


def test_endpoint_key_is_method_and_name_of_each_sample(make_run):
    import pandas as pd

    run = load_run(make_run())
    s = run.samples
    expected = s["method"].astype(str) + " " + s["name"].astype(str)
    assert (s["endpoint"].astype(str) == expected).all()
    assert set(s["endpoint"].cat.categories) == set(checks_endpoints := expected.unique())
    assert "POST /api/checkout" in checks_endpoints
    # a missing method or name still gives a key, never another endpoint's
    from analysis.load import endpoint_categorical

    method = pd.Series(pd.Categorical(["GET", None, "POST"]))
    name = pd.Series(pd.Categorical(["/a", "/b", None]))
    assert list(endpoint_categorical(method, name).astype(str)) == ["GET /a", " /b", "POST "]


def test_a_window_straddling_the_next_fault_is_not_blamed_on_the_earlier_one(make_run):
    # quiet fault at 60; windows of 5 s from 60: [95, 100) is clean, [100, 105) straddles 102
    run = make_run(faults=[Fault("quiet", "instance", 60, 70, outage=False),
                           Fault("loud", "db", 102, 104)])
    res = by_name(evaluate(run, {"recovery": {**SLO, "window_s": 5, "max_s": 60}}))
    assert res["recovery after quiet"]["measured"] == 0.0


def test_scale_out_ignores_the_replacement_of_a_killed_instance(make_run):
    run = make_run(faults=[Fault("kill-web", "instance", 38, 41, outage=False)],
                   scaling=[Scaling(alarm_s=50, desired_s=51, in_service_s=56, healthy_s=58)])
    res = evaluate(run, {"scale_out": {"max_lag_s": 60}})[0]
    assert res["evidence"]["desired_s"] == pytest.approx(51.0, abs=5)  # not the kill at 38


def test_session_survival_counts_only_users_who_had_logged_in(make_run):
    """60 of 100 active users logged in before the failover: only they had a session."""
    path = make_run(faults=[Fault("cache", "cache", 100, 102, outage=False)],
                    session_loss_users=20, users=100, logins=60)
    samples = load_run(path).samples
    lost = set(samples.loc[samples["error"].astype(str).str.startswith("session lost"), "user"]
               .astype(str))
    lost_with_session = {u for u in lost if int(u.split("-")[1]) < 60}
    res = evaluate(path, {"integrity": {"sessions": 0.5}})[0]
    assert res["evidence"]["active_users"] == 60
    assert res["evidence"]["lost"] == len(lost_with_session) < len(lost)
    assert res["measured"] == pytest.approx(1 - len(lost_with_session) / 60)
    nobody = make_run("n", faults=[Fault("cache", "cache", 100, 102, outage=False)],
                      session_loss_users=5, users=100, logins=0)
    res = evaluate(nobody, {"integrity": {"sessions": True}})[0]
    assert res["verdict"] == "skipped" and "logged-in" in res["reason"]
