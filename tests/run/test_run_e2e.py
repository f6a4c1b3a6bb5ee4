"""`peakready run` end to end, as a user runs it (a subprocess of the CLI), against real
sandboxes: bad input starts nothing; a stop condition aborts with rollbacks; Ctrl-C
mid-fault keeps an analysable folder; the CI plan runs whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.spawns  # `peakready run` as a subprocess

REPO = Path(__file__).resolve().parents[2]


def aws_env(status: dict[str, Any]) -> dict[str, str]:
    aws = status["aws"]
    return {"AWS_ENDPOINT_URL": aws["endpoint_url"], "AWS_ACCESS_KEY_ID": aws["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"], "AWS_REGION": aws["region"],
            "AWS_DEFAULT_REGION": aws["region"], "AWS_MAX_ATTEMPTS": "1"}


def client(status: dict[str, Any], service: str):
    aws = status["aws"]
    return boto3.client(service, endpoint_url=aws["endpoint_url"], region_name=aws["region"],
                        aws_access_key_id=aws["access_key_id"],
                        aws_secret_access_key=aws["secret_access_key"])


def base_plan() -> dict[str, Any]:
    return yaml.safe_load((REPO / "plans" / "ci-gate.yaml").read_text())


def write_plan(tmp_path: Path, plan: dict[str, Any], name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def flat_profile(tmp_path: Path, rps: float = 5.0, seconds: int = 60) -> Path:
    path = tmp_path / "flat.csv"
    path.write_text(f"t_s,rps\n0,{rps}\n{seconds},{rps}\n")
    return path


def start_run(args: list[str], env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "peakready.cli", "run", "--plain", *args],
                            cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout_s: float, every_s: float = 0.5):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def _run_dirs(reports: Path) -> list[Path]:
    return sorted(p for p in reports.glob("*") if (p / "run.json").exists()) if reports.exists() else []


def _private_tmp(run_tmp: Path) -> dict[str, str]:
    """The run's own temp dir (its sandbox state lives there), so what it leaves behind
    is told apart from other runs on the machine."""
    return {"TMPDIR": str(run_tmp)}


def _sandbox_dirs(run_tmp: Path) -> list[str]:
    return [p.name for p in run_tmp.glob("peakready-run-sandbox-*")]


def _finish(proc, timeout_s: float = 240) -> int:
    try:
        return proc.wait(timeout_s)
    except Exception:
        proc.kill()
        proc.wait()
        raise


def _aws_plan(tmp_path: Path, status: dict, **changes) -> dict:
    """ci-gate pointed at a running sandbox as an `aws` target: the test owns the account
    and can act on it while the run goes."""
    plan = base_plan()
    plan["name"] = "run-test"
    resources = {k: v for k, v in status["resources"].items() if isinstance(v, str)}
    plan["target"].update(kind="aws", storefront_url=status["storefront_url"], alarms=[],
                          resources=resources)
    plan["load"].update(profile=str(flat_profile(tmp_path, rps=6, seconds=60)), max_users=60)
    plan["phases"] = [{"name": "steady", "start_s": 0, "end_s": 60}]
    plan["faults"] = [{"name": "scale-out-blocked", "experiment": "experiments/scale-out-blocked.json",
                       "at_s": 3, "configuration": {"hold_s": 60}}]
    plan["checks"] = {"error_rate": [{"endpoint": "*", "phase": "*", "max": 0.5}]}
    plan["stop_conditions"] = {"error_rate": {"max": 0.9, "for_s": 30}, "alarms": []}
    plan.update(changes)
    return plan


def _launch_suspended(status: dict) -> bool:
    group = client(status, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["peakready-web"])["AutoScalingGroups"][0]
    return any(p["ProcessName"] == "Launch" for p in group.get("SuspendedProcesses", []))


# --- bad input: exit 2, one line, nothing started ------------------------------------------

def _bad(tmp_path: Path, run_tmp: Path, plan_path: Path, env: dict | None = None,
         extra: list | None = None):
    reports = tmp_path / "reports"
    log = tmp_path / "out.txt"
    proc = start_run([str(plan_path), "--reports-dir", str(reports), *(extra or [])],
                     {**(env or {}), **_private_tmp(run_tmp)}, log)
    rc = _finish(proc, 120)
    out = log.read_text()
    errors = [ln for ln in out.splitlines() if ln.startswith("peakready: error:")]
    assert rc == 2, out
    assert len(errors) == 1, out
    assert _run_dirs(reports) == []  # no run folder: no load was sent, no fault journaled
    assert _sandbox_dirs(run_tmp) == []  # any sandbox it started is gone
    return errors[0]


def test_malformed_plan_exits_2_and_starts_nothing(tmp_path, run_tmp):
    plan = base_plan()
    plan["load"]["scale"] = "lots"
    line = _bad(tmp_path, run_tmp, write_plan(tmp_path, plan))
    assert "load.scale" in line


def test_experiment_failing_validation_exits_2_before_any_sandbox(tmp_path, run_tmp):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({
        "version": "1.0.0", "title": "broken", "description": "its method calls nothing real",
        "configuration": {"observe_s": 1},
        "method": [{"type": "action", "name": "nothing",
                    "provider": {"type": "python", "module": "peakready.no_such_module",
                                 "func": "nope"}}]}))
    plan = base_plan()
    plan["faults"] = [{"name": "broken", "experiment": str(broken), "at_s": 5}]
    line = _bad(tmp_path, run_tmp, write_plan(tmp_path, plan))
    assert "broken" in line


def test_fault_on_a_resource_the_plan_does_not_name_exits_2(tmp_path, run_tmp):
    """Without target.resources the experiment would fall back to its own default group,
    which the allow-list never sees: refused before anything starts."""
    plan = base_plan()
    plan["target"].update(kind="aws", storefront_url="http://127.0.0.1:9")
    plan["faults"] = [{"name": "scale-out-blocked", "at_s": 3,
                       "experiment": "experiments/scale-out-blocked.json"}]
    line = _bad(tmp_path, run_tmp, write_plan(tmp_path, plan))
    assert "configuration.asg_name" in line and "target.resources.autoscaling_group" in line


def test_unreachable_storefront_exits_2_before_any_load(sandbox, tmp_path, run_tmp):
    plan = _aws_plan(tmp_path, sandbox)
    plan["target"]["storefront_url"] = "http://127.0.0.1:9"  # nothing listens there
    line = _bad(tmp_path, run_tmp, write_plan(tmp_path, plan), env=aws_env(sandbox))
    assert "unreachable" in line and not _launch_suspended(sandbox)


def test_aws_target_without_credentials_exits_2(tmp_path):
    plan = base_plan()
    plan["target"].update(kind="aws", storefront_url="http://127.0.0.1:9",
                          resources={"autoscaling_group": "peakready-web"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    plan_path = write_plan(tmp_path, plan)
    done = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "--plain",
                           str(plan_path), "--reports-dir", str(tmp_path / "r")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0 and "credentials" in done.stderr
    assert _run_dirs(tmp_path / "r") == []


def test_allow_list_excluding_a_target_exits_2_and_touches_nothing(sandbox, tmp_path, run_tmp):
    before = client(sandbox, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="peakready-web")["Activities"]
    plan = _aws_plan(tmp_path, sandbox)
    plan["target"]["allow"] = {"account_ids": ["123456789012"], "resources": ["peakready-db"]}
    line = _bad(tmp_path, run_tmp, write_plan(tmp_path, plan), env=aws_env(sandbox))
    assert "target.allow" in line and "peakready-web" in line
    after = client(sandbox, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="peakready-web")["Activities"]
    assert len(after) == len(before) and not _launch_suspended(sandbox)


# --- a stop condition fires mid-run --------------------------------------------------------

def test_stop_condition_alarm_aborts_with_rollbacks(sandbox, tmp_path):
    cw = client(sandbox, "cloudwatch")
    cw.put_metric_alarm(AlarmName="peakready-test-stop", Namespace="Test/Stop",
                        MetricName="Tripwire", Statistic="Maximum", Period=5,
                        EvaluationPeriods=1, Threshold=0.5,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    plan = _aws_plan(tmp_path, sandbox,
                     stop_conditions={"error_rate": {"max": 0.9, "for_s": 30},
                                      "alarms": ["peakready-test-stop"]})
    reports = tmp_path / "reports"
    log = tmp_path / "out.txt"
    proc = start_run([str(write_plan(tmp_path, plan)), "--reports-dir", str(reports),
                      "--settle-s", "1"], aws_env(sandbox), log)
    try:
        wait_for(lambda: _launch_suspended(sandbox), 60)  # the fault is in
        cw.put_metric_data(Namespace="Test/Stop", MetricData=[
            {"MetricName": "Tripwire", "Value": 1.0, "StorageResolution": 1}])
        rc = _finish(proc, 180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 3, out
    assert "peakready-test-stop" in out
    assert not _launch_suspended(sandbox), "the rollback resumed Launch"
    (run_dir,) = _run_dirs(reports)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "aborted" and "peakready-test-stop" in meta["abort_reason"]
    journal = json.loads((run_dir / "chaos" / "scale-out-blocked.journal.json").read_text())
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["resume-launch"]
    assert journal["rollbacks"][0]["status"] == "succeeded"
    events = pd.read_parquet(run_dir / "events.parquet")
    abort = events.query("kind == 'abort'")
    assert len(abort) == 1 and "peakready-test-stop" in json.loads(abort["detail"].iloc[0])["reason"]
    fault_start = events.query("kind == 'fault_start'")["ts"].iloc[0]
    # cut short: the fault holds 60 s and the profile runs 57 s past it (a run's own start
    # includes its preflight, seconds more on a busy machine: not the reference)
    assert fault_start < abort["ts"].iloc[0] < fault_start + 50
    assert len(list((run_dir / "samples").glob("*.parquet"))) > 0
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert {"RequestCount", "TargetResponseTime", "GroupInServiceInstances"} <= set(metrics["metric"])
    assert "p95" in set(metrics.query("metric == 'TargetResponseTime'")["stat"])
    assert (run_dir / "verdict.json").exists()  # analysed up to the abort


# --- Ctrl-C in the middle of a fault ----------------------------------------------------------

def test_sigint_mid_fault_runs_rollbacks_and_keeps_an_analysable_folder(sandbox, tmp_path):
    plan = _aws_plan(tmp_path, sandbox)
    reports = tmp_path / "reports"
    log = tmp_path / "out.txt"
    proc = start_run([str(write_plan(tmp_path, plan)), "--reports-dir", str(reports),
                      "--settle-s", "1"], aws_env(sandbox), log)
    try:
        wait_for(lambda: _launch_suspended(sandbox), 60)
        proc.send_signal(signal.SIGINT)
        rc = _finish(proc, 180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 130, out
    assert not _launch_suspended(sandbox)
    (run_dir,) = _run_dirs(reports)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    journal = json.loads((run_dir / "chaos" / "scale-out-blocked.journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert journal["rollbacks"] and journal["rollbacks"][0]["status"] == "succeeded"
    (run_dir / "verdict.json").unlink()
    again = subprocess.run([sys.executable, "-m", "peakready.cli", "analyze", str(run_dir)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode in (0, 1), again.stderr  # re-analysable by anyone, any time
    assert (run_dir / "verdict.json").exists() and (run_dir / "report.html").exists()
    events = pd.read_parquet(run_dir / "events.parquet")
    assert set(events["kind"]) >= {"fault_start", "fault_end", "interrupt"}


# --- the CI plan, whole, on its own sandbox ---------------------------------------------------

@pytest.mark.slow
def test_ci_gate_plan_end_to_end_on_the_sandbox(tmp_path, run_tmp):
    reports = tmp_path / "reports"
    log = tmp_path / "out.txt"
    proc = start_run(["plans/ci-gate.yaml", "--reports-dir", str(reports)],
                     _private_tmp(run_tmp), log)
    rc = _finish(proc, 400)
    out = log.read_text()
    assert rc in (0, 1), out  # the verdict's exit code, whichever it is
    assert _sandbox_dirs(run_tmp) == []  # the run's sandbox was stopped and removed
    (run_dir,) = _run_dirs(reports)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "completed" and meta["exit_code"] == rc
    state_dir = Path(meta["target"]["sandbox_state_dir"])
    assert state_dir.parent == run_tmp and not state_dir.exists()
    samples = pd.read_parquet(run_dir / "samples")
    assert len(samples) > 1000
    assert list((run_dir / "orders").glob("*.jsonl"))
    assert (run_dir / "chaos" / "kill-web-instance.journal.json").exists()
    events = pd.read_parquet(run_dir / "events.parquet")
    kinds = set(events["kind"])
    assert {"fault_start", "fault_end", "instance_terminate", "instance_launch",
            "scaling_activity", "phase"} <= kinds
    start = events.query("kind == 'fault_start'")["ts"].iloc[0]
    terminated = events.query("kind == 'instance_terminate'")["ts"]
    assert ((terminated >= start - 1) & (terminated <= start + 30)).any()
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    requests = metrics.query("metric == 'RequestCount' and stat == 'Sum' "
                             "and dimensions.str.startswith('LoadBalancer=') "
                             "and not dimensions.str.contains(',')")  # the LB-wide series
    assert requests["value"].sum() == pytest.approx(len(samples), rel=0.1)
    assert set(metrics.query("metric == 'TargetResponseTime'")["stat"]) >= {"p95", "Average"}
    assert (run_dir / "integrity" / "orders.parquet").exists()
    assert (run_dir / "verdict.json").exists() and (run_dir / "junit.xml").exists()


def test_dry_run_validates_and_starts_nothing(tmp_path, run_tmp):
    reports = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "plans/sandbox-demo.yaml",
                           "--dry-run", "--plain", "--reports-dir", str(reports)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **_private_tmp(run_tmp)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing injected" in done.stdout
    for experiment in ("kill-web-instance", "aurora-failover", "cache-node-failover"):
        assert experiment in done.stdout
    assert _run_dirs(reports) == [] and _sandbox_dirs(run_tmp) == []


def test_error_rate_stop_condition_aborts_on_a_real_outage(sandbox, tmp_path):
    """Every web instance dies at once: the balancer answers 503 until replacements boot,
    the live error rate passes the bound, and the run aborts (exit 3) saying why."""
    plan = _aws_plan(tmp_path, sandbox, faults=[],
                     stop_conditions={"error_rate": {"max": 0.5, "for_s": 2}, "alarms": []})
    reports = tmp_path / "reports"
    log = tmp_path / "out.txt"
    proc = start_run([str(write_plan(tmp_path, plan)), "--reports-dir", str(reports),
                      "--settle-s", "0"], aws_env(sandbox), log)
    asg = client(sandbox, "autoscaling")
    try:
        wait_for(lambda: list(reports.glob("*/live.json")), 60)
        time.sleep(3)
        instances = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["peakready-web"])["AutoScalingGroups"][0]["Instances"]]
        for instance in instances:  # (EC2 TerminateInstances: replacements never rejoin the TG)
            asg.terminate_instance_in_auto_scaling_group(
                InstanceId=instance, ShouldDecrementDesiredCapacity=False)
        rc = _finish(proc, 180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 3, out
    (run_dir,) = _run_dirs(reports)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "aborted" and "error rate" in meta["abort_reason"]
    samples = pd.read_parquet(run_dir / "samples")
    assert (~samples["ok"]).sum() > 0 and samples["ts"].max() < meta["started_at"] + 50
    elb = client(sandbox, "elbv2")
    tg = elb.describe_target_groups(Names=["peakready-web-tg"])["TargetGroups"][0]["TargetGroupArn"]

    def healthy() -> bool:  # leave the shared sandbox whole for the next test
        states = [t["TargetHealth"]["State"] for t in
                  elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
        return states.count("healthy") >= 2

    wait_for(healthy, 60)
