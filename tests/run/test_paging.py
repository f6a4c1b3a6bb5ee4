"""The alerting path (issue 13), end to end on a real sandbox used as an `aws` target:
one `peakready run` with an Aurora failover (must page) and an instance kill (quiet),
observed through the temporary SQS queue on the alarm topic, then analysed with four
alarm selections (re-analysis of the same folder, as a user edits plan.yaml):
the shop's alarms page in time and resolve; a too-tight alarm pages on the quiet kill
(noise); an alarm that can never fire fails time_to_detect and paging; an alarm whose
topic has no reachable subscriber is undelivered. The sandbox's own pager saw the same
pages. A second run is interrupted and killed: the queue is gone both times."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from test_run_e2e import (
    _aws_plan,
    _finish,
    _run_dirs,
    aws_env,
    client,
    flat_profile,
    start_run,
    wait_for,
    write_plan,
)

SHOP = ["peakready-web-5xx", "peakready-web-latency", "peakready-web-healthy-hosts"]
# what the shop pages on for errors and capacity; the p99 alarm is left out of the verdicts
# here: on a CPU-starved test machine every request is slow, with or without a fault
JUDGED = ["peakready-web-5xx", "peakready-web-healthy-hosts"]
TOPIC = "peakready-pages"


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: a subscriber nobody can reach
    return port


def _test_alarms(status: dict) -> None:
    """A too-tight healthy-hosts alarm (1 period), one that can never fire, and one whose
    topic's only subscriber is unreachable."""
    cw, sns = client(status, "cloudwatch"), client(status, "sns")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    dead = sns.create_topic(Name="test-dead-end")["TopicArn"]
    sns.subscribe(TopicArn=dead, Protocol="http",
                  Endpoint=f"http://127.0.0.1:{_closed_port()}/enqueue")
    alarms = cw.describe_alarms(AlarmNames=["peakready-web-healthy-hosts"])["MetricAlarms"]
    dims = alarms[0]["Dimensions"]
    lb = [d for d in dims if d["Name"] == "LoadBalancer"]
    common = {"Period": 5, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
              "TreatMissingData": "notBreaching", "Namespace": "AWS/ApplicationELB"}
    cw.put_metric_alarm(AlarmName="test-tight-hosts", MetricName="HealthyHostCount",
                        Dimensions=dims, Statistic="Minimum", Threshold=2,
                        ComparisonOperator="LessThanThreshold", AlarmActions=[topic],
                        OKActions=[topic], **common)
    cw.put_metric_alarm(AlarmName="test-never", MetricName="RequestCount", Dimensions=lb,
                        Statistic="Sum", Threshold=1e12, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[topic], OKActions=[topic], **common)
    cw.put_metric_alarm(AlarmName="test-dead-end", MetricName="HTTPCode_Target_5XX_Count",
                        Dimensions=lb, Statistic="Sum", Threshold=0,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[dead], **common)


def _queues(status: dict) -> list[str]:
    return client(status, "sqs").list_queues(QueueNamePrefix="peakready-pages-").get(
        "QueueUrls", [])


def _queue_subscriptions(status: dict) -> list[dict]:
    sns = client(status, "sns")
    topic = f"arn:aws:sns:{status['aws']['region']}:{status['aws']['account_id']}:{TOPIC}"
    return [s for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
            if s["Protocol"] == "sqs"]


def _paging_plan(tmp_path: Path, status: dict, **changes) -> dict:
    plan = _aws_plan(tmp_path, status, **changes)
    plan["target"]["alarms"] = [*SHOP, "test-tight-hosts", "test-never", "test-dead-end"]
    plan["target"]["paging"] = {"topics": [TOPIC]}
    plan["target"]["allow"]["topics"] = [TOPIC]
    plan["target"]["allow"]["resources"] = ["peakready-web", "peakready-db"]
    return plan


def _analyse(run_dir: Path, checks: dict) -> dict:
    """The checks evaluated on the run folder as analysis does (no figures: fast)."""
    from analysis import checks as checks_mod
    from analysis.load import load_run

    results = checks_mod.evaluate(checks_mod.context(load_run(run_dir)), checks)
    return {r.name: r.to_dict() for r in results}


def _checks(alarms: list[str]) -> dict:
    return {"time_to_detect": {"max_s": 30, "faults": ["aurora-failover"], "alarms": alarms},
            "paging": {"max_time_to_page_s": 30, "faults": ["aurora-failover"],
                       "quiet": ["kill-web-instance"], "alarms": alarms}}


def test_failover_pages_kill_stays_quiet_and_what_breaks_the_path(sandbox, tmp_path):
    _test_alarms(sandbox)
    plan = _paging_plan(tmp_path, sandbox, faults=[
        {"name": "aurora-failover", "experiment": "experiments/aurora-failover.json",
         "at_s": 4, "configuration": {"observe_s": 3}},
        {"name": "kill-web-instance", "experiment": "experiments/kill-web-instance.json",
         "at_s": 17, "configuration": {"observe_s": 3, "max_error_rate": 0.5,
                                       "max_p95_ms": 60000}}],
        checks=_checks(JUDGED), phases=[{"name": "steady", "start_s": 0, "end_s": 32}])
    plan["load"].update(profile=str(flat_profile(tmp_path, rps=50, seconds=32)), max_users=250)
    reports, log = tmp_path / "reports", tmp_path / "out.txt"
    started = time.time()
    proc = start_run([str(write_plan(tmp_path, plan)), "--reports-dir", str(reports),
                      "--settle-s", "6"], aws_env(sandbox), log)
    try:
        # the temporary queue appears, subscribed to the alarm topic ...
        wait_for(lambda: _queues(sandbox) and _queue_subscriptions(sandbox), 60)
        assert len(_queues(sandbox)) == 1 and len(_queue_subscriptions(sandbox)) == 1
        rc = _finish(proc, 240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc in (0, 1), out
    assert "nothing was injected" not in out and "could not start" not in out, out
    assert _queues(sandbox) == [] and _queue_subscriptions(sandbox) == []  # ... and is gone
    (run_dir,) = _run_dirs(reports)
    received = [json.loads(x) for x in (run_dir / "paging" / "sqs.jsonl").read_text().splitlines()]
    assert any(r["alarm"] == "peakready-web-5xx" and r["state"] == "ALARM" for r in received)
    assert all(started - 60 < r["arrived_at"] <= r["received_at"] for r in received)
    events = pd.read_parquet(run_dir / "events.parquet")
    assert {"page", "alarm_action"} <= set(events["kind"])

    # the shop's alarms (the plan's checks, analysed by the run): the failover pages within
    # the bound and resolves; the kill is quiet
    verdict = json.loads((run_dir / "verdict.json").read_text())
    res = {c["name"]: c for c in verdict["checks"]}
    page = res["time to page aurora-failover"]
    assert page["verdict"] == "pass" and page["measured"] <= 30, page
    assert page["measured"] >= res["time to detect aurora-failover"]["measured"]
    assert res["quiet during kill-web-instance"]["verdict"] == "pass", res
    assert res["pages resolved"]["verdict"] == "pass", res["pages resolved"]
    assert res["alarm notifications delivered"]["verdict"] == "pass"
    row = next(f for f in verdict["faults"] if f["name"] == "aurora-failover")
    assert "pass" in row["time_to_page"] and "pass" in row["time_to_detect"]

    # a healthy-hosts alarm on one period pages on the replaced instance: noise
    noisy = _analyse(run_dir, _checks(["test-tight-hosts"]))["quiet during kill-web-instance"]
    assert noisy["verdict"] == "fail" and "noise: test-tight-hosts" in noisy["reason"], noisy

    # a threshold nothing reaches: neither detected nor paged
    never = _analyse(run_dir, _checks(["test-never"]))
    assert never["time to detect aurora-failover"]["verdict"] == "fail"
    assert never["time to page aurora-failover"]["verdict"] == "fail"

    # an alarm whose topic has no reachable subscriber: in ALARM, never paged
    dead = _analyse(run_dir, _checks(["test-dead-end"]))["alarm notifications delivered"]
    assert dead["verdict"] == "fail" and "undelivered: test-dead-end" in dead["reason"], dead
    assert "no notification reached" in dead["evidence"]["undelivered"][0]["reason"]

    # the sandbox's own pager (its PagerDuty) got the same page and resolved the incident
    from peakready.paging.observer import SandboxPager

    pager = SandboxPager(tmp_path / "pager", sandbox["control_plane"]["paging"])
    pager.finish(started, time.time())
    pages = [json.loads(x) for x in (tmp_path / "pager" / "paging" / "pager.jsonl")
             .read_text().splitlines()]
    mine = [p for p in pages if p["alarm"] == "peakready-web-5xx" and p["arrived_at"] > started]
    acted = [p["incident_action"] for p in mine if p["incident_action"] != "dropped"]
    assert acted[:2] == ["triggered", "resolved"], mine  # (an OK with nothing open drops)
    incidents = [json.loads(x) for x in (tmp_path / "pager" / "paging" / "incidents.jsonl")
                 .read_text().splitlines()]
    assert any(i["incident_key"] == "peakready-web-5xx" and i["status"] == "resolved"
               for i in incidents)


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_temporary_queue_is_gone_after_an_interrupted_or_killed_run(sandbox, tmp_path, how):
    plan = _paging_plan(tmp_path, sandbox, faults=[], checks={
        "error_rate": [{"endpoint": "*", "phase": "*", "max": 0.5}]})
    reports, log = tmp_path / "reports", tmp_path / "out.txt"
    proc = start_run([str(write_plan(tmp_path, plan)), "--reports-dir", str(reports),
                      "--settle-s", "1"], aws_env(sandbox), log)
    try:
        wait_for(lambda: _queues(sandbox) and _queue_subscriptions(sandbox), 60)
        time.sleep(1.0)
        if how == "sigint":
            proc.send_signal(signal.SIGINT)
            assert _finish(proc, 120) == 130, log.read_text()
        else:
            os.kill(proc.pid, signal.SIGKILL)  # no finally runs: the reaper must clean up
            proc.wait(10)
        wait_for(lambda: not _queues(sandbox) and not _queue_subscriptions(sandbox), 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if how == "sigkill":  # the killed run's Locust: end it by PID (tests leave nothing)
            _end_orphans(reports)


def _end_orphans(reports: Path) -> None:
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(reports) in part for part in proc.info["cmdline"] or []):
                proc.kill()
        except psutil.Error:
            continue
