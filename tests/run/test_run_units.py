"""Pure parts of the run: fault schedule, the error-rate stop condition, the live view."""

from __future__ import annotations

import io
import json

from peakready.run import schedule as sched
from peakready.run.engine import phase_events
from peakready.run.stop import ErrorRateGuard
from peakready.run.view import LiveView, Snapshot, line, snapshot_from_live


def _live(ts, rate, requests=100):
    return {"ts": ts, "elapsed_s": ts - 1000, "target_rps": 50.0, "users": 12,
            "windows": {"10": {"rps": 49.0, "p95_ms": 120.0, "error_rate": rate,
                               "requests": requests}}}


def test_schedule_orders_faults_and_says_what_comes_next():
    plan = [{"name": "db", "experiment": "experiments/aurora-failover.json", "at_s": 90},
            {"experiment": "experiments/kill-web-instance.json", "at_s": 30}]
    schedule = sched.fault_schedule(plan)
    assert [f.name for f in schedule] == ["kill-web-instance", "db"]
    assert sched.due(schedule, set(), 29.9) == []
    assert [f.name for f in sched.due(schedule, set(), 30.0)] == ["kill-web-instance"]
    assert sched.next_fault(schedule, {"kill-web-instance"}, 40.0) == ("db", 50.0)
    assert sched.next_fault(schedule, {"kill-web-instance", "db"}, 100.0) is None
    assert [f.name for f in sched.due(schedule, {"kill-web-instance"}, 200)] == ["db"]


def test_error_rate_guard_fires_only_after_the_breach_held():
    guard = ErrorRateGuard(max_rate=0.2, for_s=10)
    assert guard.feed(_live(1000, 0.5)) is None  # breach starts
    assert guard.feed(_live(1005, 0.6)) is None  # held 5 s
    assert guard.feed(_live(1007, 0.1)) is None  # recovered: reset
    assert guard.breach_since is None
    assert guard.feed(_live(1008, 0.5)) is None
    assert guard.feed(_live(1012, 0.5, requests=3)) is None  # too few requests: no evidence
    reason = guard.feed(_live(1018, 0.5))
    assert reason and "50.0%" in reason and "20.0%" in reason and "10 s" in reason


def test_error_rate_guard_ignores_missing_live_status():
    guard = ErrorRateGuard(max_rate=0.0, for_s=0)
    assert guard.feed(None) is None
    assert guard.feed({"ts": 1, "windows": {}}) is None


def test_live_view_plain_line_has_the_numbers_an_operator_needs():
    snap = snapshot_from_live(_live(1042, 0.031), elapsed_s=42, duration_s=180, phase="peak",
                              in_service=3, desired=4, running_faults=["kill-web-instance"],
                              next_fault=("aurora-failover", 18.0))
    text = line(snap)
    for part in ("t=   42/180s", "phase=peak", "rps=49.0/50.0", "p95=120ms", "err=3.1%",
                 "in-service=3/4", "faults=kill-web-instance", "next=aurora-failover in 18s"):
        assert part in text, (part, text)
    out = io.StringIO()
    with LiveView(file=out) as view:  # not a terminal: plain lines
        view.update(snap)
        view.say("fault x started")
    assert "phase=peak" in out.getvalue() and "fault x started" in out.getvalue()
    assert "\x1b[" not in out.getvalue()
    assert line(Snapshot()).startswith("t=")


def test_phase_events_cover_what_actually_ran():
    phases = [{"name": "warm-up", "start_s": 0, "end_s": 30},
              {"name": "peak", "start_s": 30, "end_s": 90},
              {"name": "recovery", "start_s": 90, "end_s": 120}]
    rows = phase_events(phases, anchor=1000.0, end=1050.0)  # aborted at t=50
    assert [r["resource"] for r in rows] == ["warm-up", "peak"]
    assert json.loads(rows[1]["detail"]) == {"start": 1030.0, "end": 1050.0}


def test_live_view_on_a_terminal_draws_the_panel():
    from rich.console import Console

    from peakready.run.view import table

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    console.print(table(Snapshot(elapsed_s=12, phase="ramp", target_rps=40.0, achieved_rps=38.5,
                                 p95_ms=81.0, error_rate=0.0, in_service=2, desired=3,
                                 next_fault=("kill-web-instance", 23.0),
                                 guard="error rate over bound for 4/15 s")))
    text = out.getvalue()
    for part in ("ramp", "38.5 / 40.0", "81 ms", "2 / 3", "kill-web-instance in 23 s", "4/15 s"):
        assert part in text, part


def test_settle_s_must_be_a_finite_number_of_seconds(capsys):
    from peakready.cli import main

    for bad in ("nan", "-5", "inf"):
        assert main(["run", "plans/ci-gate.yaml", "--dry-run", "--settle-s", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--settle-s" in err[0]
