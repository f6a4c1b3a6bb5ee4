"""Real ``chaos run`` processes on tiny experiments (process probes on a flag file), read
back with the journal reader: the cases where the exit code says 0 but the gate must fail,
and an interrupt that still runs the rollbacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from peakready.chaos.journal import read_outcome
from peakready.chaos.runner import start_experiment


def flag_probe(name: str = "flag-present") -> dict:
    return {"type": "probe", "name": name, "tolerance": 0,
            "provider": {"type": "process", "path": "test", "arguments": "-e ${flag}"}}


def experiment(tmp_path: Path, method: list[dict], rollbacks: list[dict] | None = None) -> Path:
    doc = {
        "title": "flag experiment", "description": "process probes on a flag file",
        "configuration": {"flag": str(tmp_path / "flag"), "marker": str(tmp_path / "rolled")},
        "steady-state-hypothesis": {"title": "flag is there", "probes": [flag_probe()]},
        "method": method,
        "rollbacks": rollbacks or [],
    }
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(doc))
    return path


def sh(name: str, script: str, timeout: float = 30) -> dict:
    return {"type": "action", "name": name,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", script],
                         "timeout": timeout}}


ROLLBACK = sh("mark-rolled-back", "touch ${marker}")


def run(tmp_path: Path, exp: Path, **kw) -> tuple[int, Path]:
    journal = tmp_path / "chaos" / "x.journal.json"
    proc = start_experiment(exp, journal, tmp_path / "logs" / "x.log", **kw)
    try:
        rc = proc.wait(60)
    finally:
        proc.kill()
    return rc, journal


@pytest.mark.spawns
def test_steady_state_failing_before_method_exits_0_but_outcome_fails(tmp_path):
    exp = experiment(tmp_path, [sh("fault", "true")], [ROLLBACK])  # no flag file: fails
    rc, journal = run(tmp_path, exp, hypothesis_strategy="default")
    outcome = read_outcome(journal)
    assert rc == 0  # what chaos run says
    assert outcome.status == "completed" and outcome.deviated is False
    assert outcome.steady_state_before_met is False
    assert not outcome.ok
    assert "before the method" in outcome.reason and "flag-present" in outcome.reason
    assert outcome.rollbacks_ran and (tmp_path / "rolled").exists()


@pytest.mark.spawns
def test_deviation_during_method_with_recovery_exits_0_but_outcome_fails(tmp_path):
    flag = tmp_path / "flag"
    flag.touch()
    fault = sh("remove-flag-then-restore", f"rm -f {flag}; sleep 2.5; touch {flag}")
    exp = experiment(tmp_path, [fault], [ROLLBACK])
    rc, journal = run(tmp_path, exp, hypothesis_strategy="continuously",
                      hypothesis_frequency_s=0.5)
    outcome = read_outcome(journal)
    assert rc == 0
    assert outcome.steady_state_before_met is True and outcome.steady_state_after_met is True
    assert outcome.deviations_during >= 1
    # observed (probe end) while the fault was on, give or take a probe's duration
    assert outcome.fault_start - 0.5 <= outcome.deviation_times[0] <= outcome.fault_end + 0.5
    assert not outcome.ok and "during the method" in outcome.reason
    assert outcome.fault_end - outcome.fault_start >= 2.5


@pytest.mark.spawns
def test_clean_run_is_ok_with_fault_window(tmp_path):
    (tmp_path / "flag").touch()
    exp = experiment(tmp_path, [sh("harmless", "sleep 0.5")], [ROLLBACK])
    rc, journal = run(tmp_path, exp, hypothesis_strategy="continuously",
                      hypothesis_frequency_s=0.2)
    outcome = read_outcome(journal)
    assert rc == 0 and outcome.ok, outcome.reason
    assert outcome.deviations_during == 0 and outcome.rollbacks_ran
    assert 0.4 <= outcome.fault_end - outcome.fault_start < 5


@pytest.mark.spawns
def test_failed_fault_action_is_not_ok(tmp_path):
    (tmp_path / "flag").touch()
    broken = {"type": "action", "name": "broken-fault",
              "provider": {"type": "python", "module": "json", "func": "loads",
                           "arguments": {"s": "{"}}}
    exp = experiment(tmp_path, [broken], [ROLLBACK])
    rc, journal = run(tmp_path, exp, hypothesis_strategy="default")
    outcome = read_outcome(journal)
    assert rc == 0
    assert outcome.failed_activities == ["broken-fault"] and not outcome.ok


@pytest.mark.spawns
def test_interrupt_mid_fault_runs_rollbacks(tmp_path):
    (tmp_path / "flag").touch()
    exp = experiment(tmp_path, [sh("long-fault", "touch ${marker}.started; sleep 30")],
                     [ROLLBACK])
    journal = tmp_path / "chaos" / "x.journal.json"
    proc = start_experiment(exp, journal, tmp_path / "logs" / "x.log",
                            configuration={"marker": str(tmp_path / "rolled")},
                            hypothesis_strategy="default")
    try:
        deadline = time.time() + 30
        while not (tmp_path / "rolled.started").exists():
            assert time.time() < deadline, "fault never started"
            assert proc.poll() is None, (tmp_path / "logs" / "x.log.out").read_text()
            time.sleep(0.1)
        t0 = time.time()
        proc.interrupt()
        proc.interrupt()  # a second request must not cut the rollbacks short
        assert proc.wait(20) is not None
        assert time.time() - t0 < 15
    finally:
        proc.kill()
    outcome = read_outcome(journal)
    assert outcome.status == "interrupted" and not outcome.ok
    assert outcome.rollbacks_ran and (tmp_path / "rolled").exists()
    assert (tmp_path / "chaos" / "x.vars.json").exists()


def test_missing_journal_is_a_failure(tmp_path):
    outcome = read_outcome(tmp_path / "nope.json")
    assert outcome.status == "missing" and not outcome.ok


@pytest.mark.parametrize("bad", ["{", ""])
def test_unreadable_journal_is_a_failure(tmp_path, bad):
    path = tmp_path / "j.json"
    path.write_text(bad)
    assert not read_outcome(path).ok
