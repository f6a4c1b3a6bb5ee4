"""analyze(): outputs, exit codes, half-written runs, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from analysis import analyze, load_run
from analysis.synthetic import Fault
from peakready import runfolder
from peakready.cli import main
from peakready.errors import BadInput

CHECKS = {
    "latency": [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 800}],
    "error_rate": [{"endpoint": "*", "phase": "peak", "max": 0.02}],
    "recovery": {"window_s": 1, "windows": 3, "max_s": 30, "p95_ms": 800, "error_rate": 0.02},
    "time_to_detect": {"max_s": 30},
    "integrity": {"orders": True, "sessions": True},
}


def test_passing_run_writes_every_output(make_run):
    run = make_run(checks=CHECKS)
    verdict = analyze(run)
    assert verdict["verdict"] == "pass" and verdict["exit_code"] == 0
    on_disk = json.loads((run / "verdict.json").read_text())
    assert on_disk["schema"] == "peakready.verdict/1" and on_disk["verdict"] == "pass"
    assert {"recovery", "time_to_detect"} <= {c["check"] for c in on_disk["checks"]
                                              if c["verdict"] == "skipped"}  # no fault
    assert all(c["reason"] for c in on_disk["checks"])
    assert (run / "figures" / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="http' not in html
    assert "PASS" in (run / "summary.md").read_text()
    suite = ET.parse(run / "junit.xml").getroot()
    assert int(suite.get("tests")) == len(on_disk["checks"]) and suite.get("failures") == "0"


def test_failing_run_names_its_evidence(make_run):
    run = make_run(checks=CHECKS, faults=[Fault("kill-db", "db", 80, 84)], lost_orders=2)
    verdict = analyze(run)
    assert verdict["verdict"] == "fail" and verdict["exit_code"] == 1
    failed = {c["name"]: c for c in verdict["checks"] if c["verdict"] == "fail"}
    assert "data integrity: confirmed orders" in failed
    assert failed["data integrity: confirmed orders"]["measured_text"] == "2 orders lost"
    assert "error rate * in peak" in failed
    peak = failed["error rate * in peak"]
    assert peak["window"]["name"] == "peak" and peak["evidence"]["errors"] > 0
    assert peak["figure"] == "figures/timeline.png"
    fault = verdict["faults"][0]
    assert fault["source"] == "infrastructure events" and "4 s (pass)" == fault["recovery"]
    assert (run / "figures" / "fault-kill-db.png").exists()
    suite = ET.parse(run / "junit.xml").getroot()
    assert int(suite.get("failures")) == len(failed)
    messages = [f.get("message") for f in suite.iter("failure")]
    assert any("not found" in m for m in messages)
    summary = (run / "summary.md").read_text()
    assert "### Failed" in summary and "kill-db" in summary
    start, end = peak["window"]["start_s"], peak["window"]["end_s"]
    assert f"| peak [{start:g}, {end:g}) s |" in summary  # the window's seconds, not a name


def test_aborted_run_keeps_exit_3_and_reports(make_run):
    run = make_run(checks=CHECKS, status="aborted")
    runfolder.update_run_json(run, abort_reason="error rate 0.6 > 0.5 for 15 s")
    verdict = analyze(run)
    assert verdict["exit_code"] == 3 and verdict["verdict"] == "aborted"
    assert "error rate 0.6" in verdict["headline"]
    assert verdict["checks"] and (run / "report.html").exists()


def test_half_written_run_is_analysed_and_marked_incomplete(make_run):
    run = make_run(checks=CHECKS, status="running", shard_rows=2000)
    shards = sorted((run / "samples").glob("*.parquet"))
    shards[-1].write_bytes(shards[-1].read_bytes()[:300])  # killed mid-write
    (run / "metrics.parquet").unlink()
    (run / "events.parquet").unlink(missing_ok=True)
    with (run / "orders" / "w0.jsonl").open("a") as fh:
        fh.write('{"order_id": "ord-torn", "ts"')
    loaded = load_run(run)
    assert loaded.incomplete
    assert any("unreadable" in p for p in loaded.problems)
    assert any("torn line" in p for p in loaded.problems)
    verdict = analyze(run)
    assert verdict["incomplete"] and verdict["verdict"] == "incomplete"
    assert verdict["exit_code"] == 1
    assert verdict["requests"] == len(loaded.samples) > 0
    assert "Incomplete run" in (run / "report.html").read_text()


def test_run_without_run_json_or_plan_still_analyses(make_run):
    run = make_run(checks=CHECKS)
    (run / "run.json").unlink()
    (run / "plan.yaml").unlink()
    verdict = analyze(run)
    assert "run.json: missing" in verdict["problems"]
    assert verdict["checks"][0]["check"] == "integrity"  # default checks without a plan


def test_not_a_run_folder_and_bad_plan_are_bad_input(tmp_path, make_run, capsys):
    with pytest.raises(BadInput, match="not a run folder"):
        analyze(tmp_path)
    assert main(["analyze", str(tmp_path)]) == 2
    run = make_run(checks={"latency": [{"endpoint": "*", "percentile": 95}]})
    assert main(["analyze", str(run)]) == 2
    assert "checks.latency[0].max_ms: required" in capsys.readouterr().err
    assert not (run / "verdict.json").exists()


def test_analyze_cli_with_baseline(make_run, capsys):
    base = make_run("base", seed=1, checks=CHECKS)
    slow = make_run("slow", seed=2, latency_factor=1.3, checks=CHECKS)
    assert main(["analyze", str(slow), "--baseline", str(base)]) == 1
    verdict = json.loads((slow / "verdict.json").read_text())
    reg = [c for c in verdict["checks"] if c["check"] == "regression"][0]
    assert reg["verdict"] == "fail" and (slow / "figures" / "regression.png").exists()
    assert verdict["regression"]["verdict"] == "regression"
    assert main(["analyze", str(slow), "--baseline", str(slow.parent / "nope")]) == 2


def test_a_run_where_every_check_was_skipped_does_not_pass(make_run):
    # a typo in an endpoint key matches no request: every check skipped, nothing proven
    run = make_run(checks={"latency": [{"endpoint": "GET /api/typo", "phase": "*",
                                        "percentile": 95, "max_ms": 1}]})
    verdict = analyze(run)
    assert verdict["summary"]["passed"] == 0 and verdict["summary"]["skipped"] > 0
    assert verdict["verdict"] == "incomplete" and verdict["exit_code"] == 1
    assert "nothing was proven" in verdict["headline"]
    assert "PASS" not in (run / "summary.md").read_text()


def test_a_fault_whose_method_failed_fails_the_gate(make_run):
    # the action raised (e.g. no instance to terminate): no outage, every SLO check passes,
    # but the plan's fault was never tested
    checks = {k: v for k, v in CHECKS.items() if k != "time_to_detect"}
    run = make_run(checks=checks, faults=[Fault("kill-web", "instance", 80, 84, outage=False,
                                                detect_s=None)])
    journal_path = run / "chaos" / "kill-web.journal.json"
    journal = json.loads(journal_path.read_text())
    journal["run"][0]["status"] = "failed"
    journal_path.write_text(json.dumps(journal))
    verdict = analyze(run)
    failed = [c for c in verdict["checks"] if c["verdict"] == "fail"]
    assert [c["name"] for c in failed] == ["fault kill-web injected"]
    assert "method activity failed" in failed[0]["reason"]
    assert verdict["verdict"] == "fail" and verdict["exit_code"] == 1


def test_a_planned_fault_without_journal_fails_a_completed_run(make_run):
    run = make_run(checks=CHECKS, faults=[Fault("kill-db", "db", 80, 84)])
    (run / "chaos" / "kill-db.journal.json").unlink()
    failed = [c for c in analyze(run)["checks"] if c["verdict"] == "fail"]
    assert any(c["name"] == "fault kill-db injected" and "never ran" in c["reason"]
               for c in failed)


def test_recovery_without_breach_states_the_windows_slo_and_worst_numbers(make_run):
    checks = {"recovery": CHECKS["recovery"]}
    run = make_run(checks=checks, faults=[Fault("kill-web", "instance", 80, 84, outage=False)])
    rec = next(c for c in analyze(run)["checks"] if c["check"] == "recovery")
    assert rec["verdict"] == "pass" and rec["measured"] == 0.0
    assert "p95 <= 800 ms" in rec["reason"] and "worst p95" in rec["reason"]
    assert rec["evidence"]["windows_checked"] > 0
    assert 0 < rec["evidence"]["worst_p95_ms"] <= 800


def test_a_fault_whose_rollback_failed_fails_the_gate(make_run):
    run = make_run(checks=CHECKS, faults=[Fault("kill-db", "db", 80, 84)])
    journal_path = run / "chaos" / "kill-db.journal.json"
    journal = json.loads(journal_path.read_text())
    journal["experiment"]["rollbacks"] = [{"type": "action", "name": "resume"}]
    journal["rollbacks"] = [{"activity": {"name": "resume"}, "status": "failed"}]
    journal_path.write_text(json.dumps(journal))
    failed = {c["name"]: c for c in analyze(run)["checks"] if c["verdict"] == "fail"}
    assert "rollback failed: resume" == failed["fault kill-db rolled back"]["reason"]
    journal["rollbacks"] = []
    journal_path.write_text(json.dumps(journal))
    failed = {c["name"]: c for c in analyze(run)["checks"] if c["verdict"] == "fail"}
    assert "did not run" in failed["fault kill-db rolled back"]["reason"]
