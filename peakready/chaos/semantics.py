"""What a Chaos Toolkit experiment will really do, read from its document: one rule each.

Pure functions (data in, data out; no file, no AWS call), used by the plan (when it
loads), the safety rails (preflight, dry run) and the run engine alike:

- ``configuration_values`` / ``substitute``: Chaos Toolkit's configuration precedence
  (``--var-file``, else the environment variable, else the declared default) and its
  ``${var}`` substitution;
- ``acted_on`` / ``probed``: the resources a fault's actions act on and its probes read;
- ``unchecked_actions``: AWS actions that name no resource the allow-list can check;
- ``unnamed_resources``: the refusal lines for resources the plan does not name;
- ``touched_resources``: what the allow-list must cover;
- ``sandbox_only``: why an experiment can only land on the sandbox (None when it runs
  anywhere).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from peakready.chaos.spec import FaultSpec

__all__ = ["ACTION_ARGUMENT_KINDS", "AWS_ACTION_MODULES", "FAULT_RESOURCE_KEYS",
           "NAMING_ARGUMENTS", "PROBE_ARGUMENT_KINDS", "SANDBOX_ONLY_ACTIONS",
           "SANDBOX_ONLY_TAG", "FaultResource", "acted_on", "configuration_values", "probed",
           "sandbox_only", "substitute", "touched_resources", "unchecked_actions",
           "unnamed_resources"]

# Experiment configuration key -> the target resource it names (peakready's experiments'
# convention). Faults act on these, so the plan must name them and the allow-list must
# cover them; plan resolution fills them from target.resources when a fault omits them.
FAULT_RESOURCE_KEYS = {
    "asg_name": "autoscaling_group",
    "db_cluster": "db_cluster",
    "replication_group": "cache_replication_group",
    "domain_name": "search_domain",
    "web_acl_name": "web_acl",
    "delivery_stream": "delivery_stream",
    "log_bucket": "log_bucket",
}
# Arguments of fault actions (method and rollbacks) that name the resource acted on:
# peakready.chaos's own actions and chaostoolkit-aws's. What a fault will really touch is
# read from these, after Chaos Toolkit's configuration substitution.
ACTION_ARGUMENT_KINDS = {
    "asg_name": "autoscaling_group",
    "asg_names": "autoscaling_group",
    "db_cluster_identifier": "db_cluster",
    "replication_group_id": "cache_replication_group",
    "target_db_instance_identifier": "db_instance",
    "domain_name": "search_domain",
    "web_acl_name": "web_acl",
    "delivery_stream_name": "delivery_stream",
    "bucket_name": "log_bucket",
}
# Arguments of probes that name what a steady state reads (read-only, not allow-listed).
PROBE_ARGUMENT_KINDS = {"target_group_name": "target_group",
                        "delivery_stream_name": "delivery_stream", "bucket_name": "log_bucket"}
# Modules whose actions act on AWS resources (the allow-list must see which ones), and the
# arguments one of which such an action must name (a failover target alone is not enough).
AWS_ACTION_MODULES = ("chaosaws", "peakready.chaos")
NAMING_ARGUMENTS = ("asg_name", "asg_names", "db_cluster_identifier", "replication_group_id",
                    "domain_name", "web_acl_name", "delivery_stream_name", "bucket_name")
# An experiment tagged so says it only lands on the sandbox, and so does one using an
# action whose effect exists only there: (module, function) -> why.
SANDBOX_ONLY_TAG = "sandbox-only"
SANDBOX_ONLY_ACTIONS = {
    ("peakready.chaos.firehose", "set_quota"):
        "AWS has no API to change a Firehose stream's quota (the sandbox reads it from "
        "the stream's peakready:quota-* tags)",
}

_REFERENCE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class FaultResource:
    """One resource a fault's actions will act on (or its probes read), and where its
    name came from."""

    index: int  # faults[index]
    fault: str
    kind: str
    name: str
    variable: str | None  # the experiment configuration variable, None for a literal
    source: str  # "plan", "env NAME", "the experiment's default (NAME unset)", ...

    @property
    def from_plan(self) -> bool:
        return self.source == "plan"


# --- Chaos Toolkit's configuration ------------------------------------------------------------

def configuration_values(declared: Mapping[str, Any], given: Mapping[str, Any],
                         environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Each configuration variable's value and its source, with Chaos Toolkit's precedence
    (``chaoslib.configuration.load_configuration``): --var-file, else the env variable,
    else the declared default; a plain value is used as is."""
    out: dict[str, tuple[Any, str]] = {}
    for key, spec in declared.items():
        if key in given:
            out[key] = (given[key], "plan")
        elif isinstance(spec, dict) and spec.get("type") == "env":
            env_key = str(spec.get("key"))
            if env_key in environ:
                out[key] = (environ[env_key], f"env {env_key}")
            else:
                out[key] = (spec.get("default"), f"the experiment's default ({env_key} unset)")
        else:
            out[key] = (spec, "the experiment's configuration")
    return out


def substitute(text: str, values: Mapping[str, tuple[Any, str]]) -> tuple[str, str | None, str]:
    """``${var}`` references replaced as Chaos Toolkit does; the (last) variable used and
    the weakest source (anything not from the plan wins)."""
    variable, source = None, "experiment"
    sources = []

    def repl(match: re.Match) -> str:
        nonlocal variable
        key = match.group(1)
        if key not in values:
            return match.group(0)
        variable = key
        value, where = values[key]
        sources.append(where)
        return "" if value is None else str(value)

    name = _REFERENCE.sub(repl, text)
    if sources:
        source = next((s for s in sources if s != "plan"), "plan")
    return name, variable, source


# --- what a fault touches ---------------------------------------------------------------------

def _activities(document: Mapping[str, Any], probes: bool) -> list[dict[str, Any]]:
    out = [a for section in ("method", "rollbacks")
           for a in (document.get(section) or []) if isinstance(a, dict)]
    if probes:
        hypothesis = (document.get("steady-state-hypothesis") or {}).get("probes") or []
        out = [a for a in hypothesis if isinstance(a, dict)] + out
    return out


def _resources(fault: FaultSpec, environ: Mapping[str, str], probes: bool
               ) -> list[FaultResource]:
    values = configuration_values(fault.declared, fault.configuration, environ)
    wanted, kinds = ("probe", PROBE_ARGUMENT_KINDS) if probes else ("action",
                                                                    ACTION_ARGUMENT_KINDS)
    out: list[FaultResource] = []
    for activity in _activities(fault.document, probes):
        if activity.get("type") != wanted:
            continue
        args = (activity.get("provider") or {}).get("arguments") or {}
        if not isinstance(args, dict):
            continue
        for arg, kind in kinds.items():
            if arg not in args:
                continue
            items = args[arg] if isinstance(args[arg], list) else [args[arg]]
            for item in items:
                if item is None:
                    continue
                name, variable, source = substitute(str(item), values)
                r = FaultResource(fault.index, fault.name, kind, name, variable, source)
                if r not in out:
                    out.append(r)
    return out


def acted_on(fault: FaultSpec, environ: Mapping[str, str]) -> list[FaultResource]:
    """The resources named by the fault's actions (method and rollbacks), once its
    configuration is substituted as ``chaos run`` will: the plan's configuration first
    (``--var-file``), else ``environ`` (what the experiment inherits), else the
    experiment's default; literals in an action's arguments count too."""
    return _resources(fault, environ, probes=False)


def probed(fault: FaultSpec, environ: Mapping[str, str]) -> list[FaultResource]:
    """What the fault's probes (steady state, method, rollbacks) read, resolved the same
    way; a probe on the experiment's default resource judges somebody else's resource."""
    return _resources(fault, environ, probes=True)


def unchecked_actions(document: Mapping[str, Any]) -> list[str]:
    """AWS fault actions (method and rollbacks) that name none of the resource arguments
    peakready reads, e.g. chaostoolkit-aws' ``terminate_random_instances(az=...)`` or
    ``suspend_processes(tags=...)``: what they act on cannot be allow-listed."""
    out = []
    for section in ("method", "rollbacks"):
        for activity in document.get(section) or []:
            if not isinstance(activity, dict) or activity.get("type") != "action":
                continue
            provider = activity.get("provider") or {}
            module = str(provider.get("module") or "")
            if provider.get("type") != "python" or not module.startswith(AWS_ACTION_MODULES):
                continue
            args = provider.get("arguments") or {}
            if not isinstance(args, dict) or not any(args.get(a) for a in NAMING_ARGUMENTS):
                out.append(f"action {activity.get('name')!r} ({module}.{provider.get('func')})")
    return out


def _fix(index: int, variable: str) -> tuple[str, str]:
    """(the field to name in the refusal, what to set)."""
    where = f"faults[{index}].configuration.{variable}"
    kind = FAULT_RESOURCE_KEYS.get(variable)
    field = f"target.resources.{kind}" if kind else None
    return field or where, f"set {field} (or {where})" if field else f"set {where}"


def unnamed_resources(faults: Iterable[FaultSpec], environ: Mapping[str, str]) -> list[str]:
    """One line per resource a fault would act on that the plan does not name (its
    experiment's default or the environment would choose it, and the allow-list would
    never see it), then one per AWS action that names no resource at all.

    A resource is named by the plan when the plan's configuration sets its variable, and,
    for the resource keys (``FAULT_RESOURCE_KEYS``), sets it to a non-empty value: an
    experiment that declares such a key acts on that resource even if no action argument
    peakready reads refers to it, and an empty name selects nothing the allow-list sees.
    """
    faults = list(faults)
    problems, seen = [], set()
    for fault in faults:
        for r in acted_on(fault, environ):
            if r.variable is None or (r.index, r.variable) in seen:
                continue
            if r.from_plan and (r.name or r.variable not in FAULT_RESOURCE_KEYS):
                continue
            seen.add((r.index, r.variable))
            field, fix = _fix(r.index, r.variable)
            if r.from_plan:
                problems.append(f"{field}: fault {r.fault} would act on a {r.kind} the plan "
                                f"leaves empty, which the allow-list never checks; {fix}")
                continue
            named = f" {r.name}" if r.name else ""
            problems.append(f"{field}: fault {r.fault} would act on the {r.kind}{named} "
                            f"taken from {r.source}, which the plan does not name and the "
                            f"allow-list never checks; {fix}")
        values = configuration_values(fault.declared, fault.configuration, environ)
        for key, kind in FAULT_RESOURCE_KEYS.items():
            if key not in fault.declared or fault.configuration.get(key) \
                    or (fault.index, key) in seen:
                continue
            seen.add((fault.index, key))
            field, fix = _fix(fault.index, key)
            value, source = values[key]
            taken = ("the plan leaves it empty" if source == "plan" else
                     f"it would be {value or 'empty'} taken from {source}")
            problems.append(f"{field}: fault {fault.name}'s experiment declares {key}, the "
                            f"{kind} it acts on, and {taken}, which the allow-list never "
                            f"checks; {fix}")
    for fault in faults:
        for action in unchecked_actions(fault.document):
            problems.append(f"faults[{fault.index}].experiment: fault {fault.name}: {action} "
                            "names no resource the allow-list can check (it would select "
                            "by tags, filters, zone or its own default); use an action "
                            f"that takes {' or '.join(NAMING_ARGUMENTS)}")
    return problems


def touched_resources(faults: Iterable[FaultSpec], environ: Mapping[str, str]
                      ) -> list[tuple[str, str, str]]:
    """``(fault name, resource kind, resource name)`` for every named resource the faults'
    actions act on (``acted_on``), once each, in plan order."""
    out: list[tuple[str, str, str]] = []
    for fault in faults:
        for r in acted_on(fault, environ):
            item = (r.fault, r.kind, r.name)
            if r.name and item not in out:
                out.append(item)
    return out


def sandbox_only(document: Mapping[str, Any]) -> str | None:
    """Why the experiment can only land on the sandbox (its ``sandbox-only`` tag, or an
    action whose effect exists only there), None when it runs anywhere. Against an aws
    target such a fault would "run" and change nothing: the plan refuses it."""
    for section in ("method", "rollbacks"):
        for activity in document.get(section) or []:
            provider = (activity.get("provider") or {}) if isinstance(activity, dict) else {}
            key = (str(provider.get("module") or ""), str(provider.get("func") or ""))
            if provider.get("type") == "python" and key in SANDBOX_ONLY_ACTIONS:
                return (f"action {activity.get('name')!r} ({'.'.join(key)}): "
                        f"{SANDBOX_ONLY_ACTIONS[key]}")
    if SANDBOX_ONLY_TAG in (document.get("tags") or []):
        return f"the experiment is tagged {SANDBOX_ONLY_TAG!r}"
    return None
