"""Plans: the bundled ones load; a malformed one is one BadInput line naming the field,
through the real CLI (exit 2) as well."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peakready.errors import BadInput
from peakready.plan import PLACEHOLDER, load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "plans"
DEMO_PATH = PLANS / "sandbox-demo.yaml"


def demo() -> dict:
    return yaml.safe_load((PLANS / "sandbox-demo.yaml").read_text())


def test_sandbox_demo_resolves_what_each_fault_touches():
    plan = load_plan(PLANS / "sandbox-demo.yaml")
    assert plan.kind == "sandbox" and plan.duration_s == pytest.approx(200.0)
    faults = {f["name"]: f for f in plan.faults}
    assert faults["kill-web-instance"]["configuration"]["asg_name"] == "peakready-web"
    assert faults["aurora-failover"]["configuration"]["db_cluster"] == "peakready-db"
    assert faults["cache-node-failover"]["configuration"]["replication_group"] == \
        "peakready-sessions"
    assert sorted(plan.touched_resources()) == [
        ("aurora-failover", "db_cluster", "peakready-db"),
        ("cache-node-failover", "cache_replication_group", "peakready-sessions"),
        ("kill-web-instance", "autoscaling_group", "peakready-web"),
        ("search-node-reboot", "search_domain", "peakready-search"),
    ]
    resolved = plan.resolved()
    assert "_duration_s" not in resolved
    assert yaml.safe_load(yaml.safe_dump(resolved)) == resolved  # writable as plan.yaml
    assert all(Path(ROOT, f["experiment"]).is_file() for f in resolved["faults"])


def test_ci_gate_is_short():
    plan = load_plan(PLANS / "ci-gate.yaml")
    assert plan.duration_s <= 120 and len(plan.faults) == 1


def test_black_friday_template_names_the_first_value_to_set():
    with pytest.raises(BadInput, match=r"black-friday-aws.yaml: target.region: set this value"):
        load_plan(PLANS / "black-friday-aws.yaml")


def test_black_friday_template_loads_once_every_marked_value_is_set(tmp_path):
    text = (PLANS / "black-friday-aws.yaml").read_text()
    text = (text.replace("region: CHANGE-ME", "region: eu-west-1")
            .replace("https://CHANGE-ME", "https://staging.shop.example")
            .replace('"CHANGE-ME"', '"111122223333"')
            .replace(PLACEHOLDER, "shop-prod"))
    path = tmp_path / "plans" / "bf.yaml"
    path.parent.mkdir()
    path.write_text(text)
    plan = load_plan(path)
    assert plan.kind == "aws" and plan.duration_s == pytest.approx(900.0)
    assert plan.target["allow"]["account_ids"] == ["111122223333"]
    assert {f["name"] for f in plan.faults} == {"scale-out-blocked", "kill-web-instance",
                                                "aurora-failover", "cache-node-failover"}
    # an aws target gets no sandbox default resource names
    assert plan.faults[0]["configuration"]["asg_name"] == "shop-prod"


def mutate(path: str, value):
    raw = demo()
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize("path,value,message", [
    ("faults.1.at_s", -5, r"faults\[1\]\.at_s: must be a number >= 0"),
    ("faults.1.at_s", "soon", r"faults\[1\]\.at_s: must be a number"),
    ("faults.0.at_s", 500, r"faults\[0\]\.at_s: 500 s is after the load ends \(200 s\)"),
    ("faults.0.experiment", "experiments/nope.json", r"faults\[0\]\.experiment: file not found"),
    ("faults.0.configuration", {"asg_nmae": "x"},
     r"faults\[0\]\.configuration\.asg_nmae: not a configuration variable"),
    ("faults.2.name", "kill-web-instance", r"faults\[2\]\.name: duplicate fault name"),
    ("faults.0.at_s", KeyError, r"faults\[0\]\.at_s: required"),
    ("target.kind", "azure", r"target\.kind: must be sandbox or aws"),
    ("target.resources.database", "x", r"target\.resources\.database: unknown field"),
    ("target.allow.account_ids", ["12345"], r"target\.allow\.account_ids\[0\]: must be a 12-digit"),
    ("load.profile", "scenarios/profiles/none.csv", r"load\.profile: file not found"),
    ("load.speed", 0, r"load\.speed: must be a number > 0"),
    ("load.workers", 1.5, r"load\.workers: must be an integer >= 1"),
    ("load.sped", 2, r"load\.sped: unknown field"),
    ("stop_conditions.error_rate", {"max": 2, "for_s": 5},
     r"stop_conditions\.error_rate\.max: must be a number > 0 and <= 1"),
    ("phases.1.end_s", 10, r"phases\[1\]\.end_s"),
    ("checks.latency", [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": -1}],
     r"checks\.latency\[0\]\.max_ms"),
    ("fautls", [], r"fautls: unknown field"),
    ("checks.latency.1.phase", "peek", r"checks\.latency\[1\]\.phase: no phase 'peek'"),
    ("checks.error_rate.0.phase", "fault:kill-web",
     r"checks\.error_rate\[0\]\.phase: no fault 'kill-web'"),
    ("faults.0.configuration", {"observe_s": "abc"},
     r"faults\[0\]\.configuration\.observe_s: must be a number \(float\), got 'abc'"),
    ("checks.time_to_detect", {"max_s": 30, "faults": ["aurora"]},
     r"checks\.time_to_detect\.faults\[0\]: no fault 'aurora'"),
])
def test_malformed_plan_names_the_field(path, value, message):
    with pytest.raises(BadInput, match=message):
        parse_plan(mutate(path, value), PLANS / "sandbox-demo.yaml")


def test_aws_target_needs_url_and_account(tmp_path):
    raw = demo()
    raw["target"]["kind"] = "aws"
    with pytest.raises(BadInput, match=r"target\.storefront_url: required"):
        parse_plan(raw, PLANS / "x.yaml")
    raw["target"]["storefront_url"] = "https://shop.example"
    raw["target"]["allow"]["account_ids"] = []
    with pytest.raises(BadInput, match=r"target\.allow\.account_ids: required"):
        parse_plan(raw, PLANS / "x.yaml")


def test_with_target_revalidates():
    plan = load_plan(PLANS / "sandbox-demo.yaml")
    with pytest.raises(BadInput, match="storefront_url"):
        plan.with_target("aws")
    assert plan.with_target("sandbox").resolved() == plan.resolved()


def test_unparseable_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nload: [unclosed\n")
    with pytest.raises(BadInput, match=r"bad.yaml: not valid YAML \(line"):
        load_plan(path)


@pytest.mark.spawns
def test_cli_dry_run_on_malformed_plan_exits_2_with_one_line(tmp_path):
    raw = mutate("faults.1.at_s", -1, )
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", str(path), "--dry-run"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "faults[1].at_s: must be a number >= 0" in lines[0]


def test_experiment_that_does_not_validate_is_refused_at_load(tmp_path):
    import json

    broken = json.loads((ROOT / "experiments" / "kill-web-instance.json").read_text())
    broken["method"][0]["provider"]["module"] = "peakready.no_such_module"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    raw = demo()
    raw["faults"][0]["experiment"] = str(path)
    with pytest.raises(BadInput, match=r"faults\[0\]\.experiment: .*broken.json does not "
                                       r"validate \(chaos validate\): could not find Python "
                                       r"module 'peakready.no_such_module'"):
        parse_plan(raw, PLANS / "sandbox-demo.yaml")


def test_steady_state_slo_follows_the_recovery_check_unless_the_fault_sets_it():
    raw = demo()
    raw["checks"]["recovery"].update(p95_ms=450, error_rate=0.01)
    raw["faults"][1]["configuration"]["max_error_rate"] = 0.2
    faults = {f["name"]: f["configuration"] for f in parse_plan(raw, DEMO_PATH).faults}
    assert faults["kill-web-instance"]["max_p95_ms"] == 450
    assert faults["kill-web-instance"]["max_error_rate"] == 0.01
    assert faults["aurora-failover"]["max_error_rate"] == 0.2


@pytest.mark.spawns
def test_a_broken_analysis_install_refuses_the_plan(tmp_path):
    """Plan validation cannot be skipped: if analysis does not import, the checks cannot be
    validated, so the run is refused (exit 2, one line) instead of running unvalidated."""
    broken = tmp_path / "site" / "analysis"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("simulated broken install")\n')
    env = {**__import__("os").environ, "PYTHONPATH": str(broken.parent)}
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", str(DEMO_PATH),
                           "--dry-run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be validated" in lines[0]
    assert "simulated broken install" in lines[0] and "dry run" not in proc.stdout
