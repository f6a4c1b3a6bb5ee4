"""The Chaos Toolkit rules peakready relies on (peakready.chaos.semantics), as pure
functions: an experiment document and the plan's configuration in, what the fault will
touch and what is refused out. No file, no AWS call."""

from __future__ import annotations

from pathlib import Path

from peakready.chaos import semantics as sem
from peakready.chaos.spec import FaultSpec


def action(name, module, func, section_args):
    return {"type": "action", "name": name,
            "provider": {"type": "python", "module": module, "func": func,
                         "arguments": section_args}}


def experiment(method, rollbacks=(), probes=(), **configuration):
    return {"title": "t", "description": "d", "configuration": configuration,
            "steady-state-hypothesis": {"title": "h", "probes": list(probes)},
            "method": list(method), "rollbacks": list(rollbacks)}


def fault(doc, configuration=None, index=0, name="f"):
    return FaultSpec.build(index, name, "x.json", Path("/nowhere/x.json"), 5.0,
                           configuration or {}, doc)


ASG = {"type": "env", "key": "PEAKREADY_ASG", "default": "peakready-web"}
KILL = action("kill", "peakready.chaos.asg", "terminate_instance", {"asg_name": "${asg_name}"})


def test_configuration_precedence_is_var_file_then_env_then_default():
    declared = {"asg_name": ASG, "window": "30"}
    assert sem.configuration_values(declared, {"asg_name": "shop"}, {"PEAKREADY_ASG": "e"}) \
        == {"asg_name": ("shop", "plan"), "window": ("30", "the experiment's configuration")}
    assert sem.configuration_values(declared, {}, {"PEAKREADY_ASG": "e"})["asg_name"] == \
        ("e", "env PEAKREADY_ASG")
    assert sem.configuration_values(declared, {}, {})["asg_name"] == \
        ("peakready-web", "the experiment's default (PEAKREADY_ASG unset)")


def test_substitution_reports_the_weakest_source_and_leaves_unknown_references():
    values = {"a": ("web", "plan"), "b": ("1", "env B"), "c": (None, "plan")}
    assert sem.substitute("${a}-${b}", values) == ("web-1", "b", "env B")
    assert sem.substitute("${a}", values) == ("web", "a", "plan")
    assert sem.substitute("${c}", values) == ("", "c", "plan")
    assert sem.substitute("${nope}/lit", values) == ("${nope}/lit", None, "experiment")


def test_actions_in_method_and_rollbacks_count_probes_only_read():
    doc = experiment(
        [action("suspend", "chaosaws.asg.actions", "suspend_processes",
                {"asg_names": ["${asg_name}", "literal-web"]})],
        rollbacks=[KILL],
        probes=[{"type": "probe", "name": "tg", "provider": {
            "type": "python", "module": "peakready.chaos.asg", "func": "healthy_targets",
            "arguments": {"target_group_name": "${tg}"}}}],
        asg_name=ASG, tg={"type": "env", "key": "TG", "default": "web-tg"})
    spec = fault(doc, {"asg_name": "shop-web"})
    assert [(r.kind, r.name, r.variable, r.source) for r in sem.acted_on(spec, {})] == [
        ("autoscaling_group", "shop-web", "asg_name", "plan"),
        ("autoscaling_group", "literal-web", None, "experiment")]
    assert [(r.kind, r.name, r.source) for r in sem.probed(spec, {"TG": "env-tg"})] == [
        ("target_group", "env-tg", "env TG")]
    assert sem.touched_resources([spec], {}) == [("f", "autoscaling_group", "shop-web"),
                                                 ("f", "autoscaling_group", "literal-web")]


def test_an_aws_action_without_a_naming_argument_is_unchecked():
    doc = experiment([
        action("zone", "chaosaws.ec2.actions", "terminate_instances", {"az": "eu-central-1a"}),
        action("named", "peakready.chaos.asg", "terminate_instance", {"asg_name": "web"}),
        action("other", "mylib.actions", "anything", {}),
        {"type": "action", "name": "sh", "provider": {"type": "process", "path": "true"}}])
    assert sem.unchecked_actions(doc) == ["action 'zone' (chaosaws.ec2.actions."
                                          "terminate_instances)"]


def test_unnamed_resources_names_the_source_and_the_field_to_set():
    doc = experiment([KILL], asg_name=ASG)
    [line] = sem.unnamed_resources([fault(doc)], {"PEAKREADY_ASG": "prod-web"})
    assert line == ("target.resources.autoscaling_group: fault f would act on the "
                    "autoscaling_group prod-web taken from env PEAKREADY_ASG, which the plan "
                    "does not name and the allow-list never checks; set "
                    "target.resources.autoscaling_group (or faults[0].configuration.asg_name)")
    assert sem.unnamed_resources([fault(doc, {"asg_name": "shop-web"})], {}) == []


def test_an_empty_resource_name_from_the_plan_is_not_a_name():
    """The stricter of the two old rules (the run engine's): ``asg_name: ""`` in the plan
    counted as 'named by the plan' for the safety rails, and as nothing to allow-list."""
    doc = experiment([KILL], asg_name=ASG)
    [line] = sem.unnamed_resources([fault(doc, {"asg_name": ""})], {})
    assert line.startswith("target.resources.autoscaling_group: fault f would act on a "
                           "autoscaling_group the plan leaves empty")
    assert sem.touched_resources([fault(doc, {"asg_name": ""})], {}) == []


def test_a_declared_resource_key_needs_a_name_even_if_no_action_argument_uses_it():
    """The stricter of the two old rules (the run engine's): an experiment declaring
    ``asg_name`` acts on that group by peakready's convention, whatever its arguments
    look like to the reader; left to its default it is refused."""
    doc = experiment([action("kill", "peakready.chaos.asg", "terminate_instance",
                             {"asg_name": "literal-web"})], asg_name=ASG)
    [line] = sem.unnamed_resources([fault(doc)], {})
    assert line.startswith("target.resources.autoscaling_group: fault f's experiment "
                           "declares asg_name, the autoscaling_group it acts on, and it "
                           "would be peakready-web taken from the experiment's default")
    assert sem.unnamed_resources([fault(doc, {"asg_name": "literal-web"})], {}) == []


def test_selectors_inside_a_resource_may_be_empty_and_unchecked_actions_come_last():
    failover = action("failover", "peakready.chaos.rds", "failover_db_cluster",
                      {"db_cluster_identifier": "${db_cluster}",
                       "target_db_instance_identifier": "${target_instance}"})
    db = experiment([failover], db_cluster={"type": "env", "key": "DB", "default": "d"},
                    target_instance={"type": "env", "key": "T", "default": ""})
    named = fault(db, {"db_cluster": "shop-db", "target_instance": ""})
    assert sem.unnamed_resources([named], {"T": "other-db-9"}) == []
    zone = experiment([action("zone", "chaosaws.ec2.actions", "terminate_instances",
                              {"az": "a"})])
    lines = sem.unnamed_resources([fault(zone, index=0, name="z"),
                                   fault(db, {"target_instance": ""}, index=1, name="db")],
                                  {})
    assert [ln.split(":")[0] for ln in lines] == ["target.resources.db_cluster",
                                                  "faults[0].experiment"]
