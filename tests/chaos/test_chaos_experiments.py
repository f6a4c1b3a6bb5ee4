"""The bundled experiments run as plain ``chaos run`` against an AWS endpoint (a moto
server holding the sandbox's resource names), judged on a live.json the test writes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chaos_awsworld import client

from peakready.chaos.journal import read_outcome
from peakready.chaos.runner import start_experiment

pytestmark = pytest.mark.spawns  # runs the chaos CLI

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def run_experiment(tmp_path, name, env, live, configuration=None, interrupt_when=None,
                   frequency=1.0):
    journal = tmp_path / "chaos" / f"{name}.journal.json"
    proc = start_experiment(EXPERIMENTS / f"{name}.json", journal,
                            tmp_path / "logs" / f"{name}.log", configuration or {},
                            {**env, "PEAKREADY_LIVE_STATUS": str(live.path)},
                            hypothesis_frequency_s=frequency)
    try:
        if interrupt_when is not None:
            deadline = time.time() + 40
            while not interrupt_when():
                assert proc.poll() is None, (tmp_path / "logs" / f"{name}.log").read_text()
                assert time.time() < deadline, "fault never landed"
                time.sleep(0.2)
            proc.interrupt()
        rc = proc.wait(90)
        assert rc is not None, "experiment did not end"
    finally:
        proc.kill()
    return read_outcome(journal)


def asg_instances(env):
    group = client(env, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["peakready-web"])["AutoScalingGroups"][0]
    return {i["InstanceId"] for i in group["Instances"]}


def writer(env):
    members = client(env, "rds").describe_db_clusters(
        DBClusterIdentifier="peakready-db")["DBClusters"][0]["DBClusterMembers"]
    return [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]


def test_kill_web_instance_replaces_one_instance(tmp_path, aws, live):
    before = asg_instances(aws)
    outcome = run_experiment(tmp_path, "kill-web-instance", aws, live,
                             {"observe_s": 1.0, "replace_timeout_s": 20.0})
    after = asg_instances(aws)
    assert outcome.ok, outcome.reason
    assert len(before - after) == 1 and len(after) == len(before)
    # pauses are not journaled: the window is the kill up to the replacement being healthy
    assert outcome.fault_start is not None and outcome.fault_end >= outcome.fault_start


def test_aurora_failover_without_named_target_changes_writer(tmp_path, aws, live):
    assert writer(aws) == ["peakready-db-1"]
    outcome = run_experiment(tmp_path, "aurora-failover", aws, live, {"observe_s": 0.5})
    assert outcome.ok, outcome.reason
    assert writer(aws) == ["peakready-db-2"]


def test_slo_breach_during_fault_is_flagged_although_chaos_exits_0(tmp_path, aws, live):
    # breach the live SLO while the failover's observation pause runs, then recover
    def breach():
        time.sleep(3.0)
        live.p95_ms = 5000.0
        time.sleep(3.0)
        live.p95_ms = 40.0

    t = threading.Thread(target=breach, daemon=True)
    t.start()
    outcome = run_experiment(tmp_path, "aurora-failover", aws, live, {"observe_s": 8.0},
                             frequency=0.5)
    t.join()
    assert outcome.status == "completed" and not outcome.deviated
    assert outcome.steady_state_after_met is True
    assert outcome.deviations_during >= 1 and not outcome.ok
    assert "p95 5000 ms" in outcome.reason


def test_stale_live_status_fails_before_the_fault_and_injects_nothing(tmp_path, aws, live):
    live._stop.set()
    live._thread.join()
    live.write()  # the last status the load wrote, then it stopped writing
    time.sleep(1.2)
    outcome = run_experiment(tmp_path, "aurora-failover", aws, live, {"max_age_s": 1.0})
    assert outcome.steady_state_before_met is False and not outcome.ok
    assert "old" in outcome.reason
    assert writer(aws) == ["peakready-db-1"]  # the method never ran


def test_scale_out_blocked_interrupted_mid_hold_resumes_launch(tmp_path, aws, live):
    asg = client(aws, "autoscaling")

    def suspended():
        group = asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["peakready-web"])["AutoScalingGroups"][0]
        return [p["ProcessName"] for p in group["SuspendedProcesses"]]

    outcome = run_experiment(tmp_path, "scale-out-blocked", aws, live, {"hold_s": 60.0},
                             interrupt_when=lambda: suspended() == ["Launch"])
    log = (tmp_path / "logs" / "scale-out-blocked.log").read_text()
    assert outcome.status == "interrupted" and outcome.rollbacks_ran, log[-3000:]
    assert outcome.rollbacks_failed == []
    assert suspended() == []


@pytest.mark.parametrize("name", ["kill-web-instance", "aurora-failover",
                                  "cache-node-failover", "scale-out-blocked"])
def test_every_bundled_experiment_validates(name):
    chaos = Path(sys.executable).with_name("chaos")
    proc = subprocess.run([str(chaos), "--no-version-check", "--no-log-file", "validate",
                           str(EXPERIMENTS / f"{name}.json")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
