"""Each experiment is read once: the plan builds one FaultSpec per fault when it loads, and
validation, the run's preflight and the fault launch use it instead of the file. The one
rule for unnamed resources is the same before the target starts and in the preflight."""

from __future__ import annotations

import builtins
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from chaos_awsworld import REGION
from demo_plan import DEMO, ROOT, demo_raw, on_aws, with_faults

from peakready.chaos import safety
from peakready.chaos import spec as faultspec
from peakready.collect import AwsClients
from peakready.errors import BadInput
from peakready.plan import load_plan, parse_plan
from peakready.run import engine
from peakready.run import schedule as sched
from peakready.run.loop import RunState, _launch
from peakready.run.target import Target

EXPERIMENTS = {(ROOT / "experiments" / f"{n}.json").resolve()
               for n in ("kill-web-instance", "aurora-failover", "search-node-reboot",
                         "cache-node-failover")}


@pytest.fixture
def reads(monkeypatch):
    """Counts, per experiment file, calls of the one reader and every open() of the file
    in this process (Chaos Toolkit's own loader included)."""
    parsed, opened = Counter(), Counter()
    reader, real_open = faultspec.read_experiment, builtins.open

    def counting_reader(path):
        parsed[Path(path).resolve()] += 1
        return reader(path)

    def counting_open(file, *args, **kwargs):
        if isinstance(file, str | Path) and Path(file).suffix in (".json", ".yaml", ".yml"):
            opened[Path(file).resolve()] += 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(faultspec, "read_experiment", counting_reader)
    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    yield parsed, opened


def _target(aws: dict[str, str]) -> Target:
    return Target("aws", REGION, "http://127.0.0.1:9", {},
                  AwsClients(REGION, {"endpoint_url": aws["AWS_ENDPOINT_URL"],
                                      "region": REGION}))


@pytest.mark.spawns
def test_each_experiment_is_read_once_for_load_preflight_and_launch(aws, reads, tmp_path):
    parsed, opened = reads
    plan = load_plan(DEMO)
    assert {p: parsed[p] for p in EXPERIMENTS} == dict.fromkeys(EXPERIMENTS, 1)
    spec = plan.resolved()
    engine.validate_before_start(plan, spec)
    notes = engine.preflight(plan, spec, _target(aws))
    assert "account 123456789012 is allowed" in notes
    assert safety.dry_run(plan)["acts_on"]
    # launched from the spec: the file the plan found, not looked up or read again
    first = sched.from_specs(plan.fault_specs)[0]
    assert first.path == (ROOT / "experiments" / "kill-web-instance.json").resolve()
    state = RunState(run_dir=tmp_path, load_started_at=0.0)
    running = _launch(first, state, spec, _target(aws))
    try:
        assert running.process.argv[-1] == str(first.path)
    finally:
        running.process.stop(grace_s=60)
    assert {p: parsed[p] for p in EXPERIMENTS} == dict.fromkeys(EXPERIMENTS, 1)
    # not even Chaos Toolkit's validation opened them again: one open each, ours
    assert {p: opened[p] for p in EXPERIMENTS} == dict.fromkeys(EXPERIMENTS, 1)


def test_an_experiment_edited_after_the_load_is_read_again_once(reads, tmp_path):
    parsed, _opened = reads
    path = tmp_path / "kill.json"
    path.write_text((ROOT / "experiments" / "kill-web-instance.json").read_text())
    raw = with_faults(demo_raw(), [{"name": "kill", "experiment": str(path), "at_s": 5}])
    plan = parse_plan(raw, DEMO)
    assert plan.current() is plan  # unchanged: a stat, no read
    doc = json.loads(path.read_text())
    doc["method"][0]["provider"] = {"type": "python", "module": "chaosaws.ec2.actions",
                                    "func": "terminate_instances", "arguments": {"az": "a"}}
    path.write_text(json.dumps(doc))
    fresh = plan.current()
    assert fresh.current() is fresh
    assert parsed[path.resolve()] == 2
    assert plan.unnamed_resources() == []  # the loaded plan keeps what it read
    assert "names no resource" in fresh.unnamed_resources()[0]


def _aws_plan(tmp_path: Path, fault: dict) -> tuple:
    raw = on_aws(demo_raw(), {"db_cluster": "peakready-db",
                              "cache_replication_group": "peakready-sessions"},
                 {"account_ids": ["123456789012"], "resources": ["peakready-web"]})
    with_faults(raw, [fault])
    plan = parse_plan(raw, DEMO)
    return plan, plan.resolved()


def _refusals(plan, spec) -> list[str]:
    """The line the run refuses with before the target starts, and the preflight's
    (no AWS call is made before it)."""
    lines = []
    for check in (lambda: engine.validate_before_start(plan, spec),
                  lambda: safety.refuse_unnamed(plan)):
        with pytest.raises(BadInput) as exc:
            check()
        lines.append(str(exc.value))
    return lines


@pytest.mark.spawns  # validate_before_start checks the locustfile in a process
def test_an_empty_resource_name_in_the_plan_is_refused_everywhere(tmp_path):
    """Where the run engine's old check and the plan's differed, the stricter holds: the
    plan's rule took ``asg_name: ""`` as named by the plan (so the preflight let it
    through with nothing to allow-list); now both refuse it."""
    plan, spec = _aws_plan(tmp_path, {"name": "kill", "at_s": 5,
                                      "experiment": "experiments/kill-web-instance.json",
                                      "configuration": {"asg_name": ""}})
    before, preflight = _refusals(plan, spec)
    assert before == preflight
    assert "target.resources.autoscaling_group: fault kill would act on a autoscaling_group " \
           "the plan leaves empty" in before
    assert "faults[0].configuration.asg_name" in before


@pytest.mark.spawns  # validate_before_start checks the locustfile in a process
def test_a_yaml_experiment_is_held_to_the_same_rule(tmp_path):
    """The engine's old check read experiments as JSON and skipped a YAML one entirely."""
    path = tmp_path / "kill.yaml"
    path.write_text(yaml.safe_dump(json.loads(
        (ROOT / "experiments" / "kill-web-instance.json").read_text())))
    plan, spec = _aws_plan(tmp_path, {"name": "kill", "at_s": 5, "experiment": str(path)})
    before, preflight = _refusals(plan, spec)
    assert before == preflight
    assert "fault kill would act on the autoscaling_group peakready-web taken from " \
           "the experiment's default" in before
