"""Run plans: load one YAML file, validate every field, resolve it into what runs.

A ``Plan`` holds the validated, resolved plan as a plain dict (``resolved()``) plus the
file it came from; nothing is started here. Every problem raises ``BadInput`` with one
line naming the file and the field (``plans/x.yaml: faults[1].at_s: must be a number >=
0``). The meaning of ``phases`` and ``checks`` belongs to analysis, whose validators are
called when present. The format is documented in docs/plans.md.

Resolution: relative paths (locustfile, profile, experiments) are found relative to the
current directory, else the project folder above ``plans/``, else the plan's folder; a
fault's experiment configuration is completed from ``target.resources`` (``asg_name`` from
``autoscaling_group``, ...) so the resolved plan says exactly which resource each fault
touches.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from peakready.errors import BadInput
from peakready.sandbox.aws import names

__all__ = ["ACTION_ARGUMENT_KINDS", "FAULT_RESOURCE_KEYS", "PLACEHOLDER", "FaultResource",
           "Plan", "load_plan", "parse_plan", "resolve_fault_resources", "unchecked_actions"]

TOP_LEVEL = {"name", "description", "target", "load", "phases", "faults", "checks",
             "stop_conditions"}
TARGET_KEYS = {"kind", "region", "storefront_url", "resources", "alarms", "allow", "web_acl"}
RESOURCE_KINDS = {"autoscaling_group", "load_balancer", "target_group", "db_cluster",
                  "cache_replication_group", "web_acl", "search_domain"}
LOAD_KEYS = {"locustfile", "user_classes", "profile", "scale", "speed", "duration_s",
             "workers", "max_users", "attacks", "clients", "tricky_shoppers"}
FAULT_KEYS = {"name", "experiment", "at_s", "configuration"}

# Experiment configuration key -> the target resource it names. Faults act on these, so
# they must be allow-listed; keys filled from target.resources when a fault omits them.
FAULT_RESOURCE_KEYS = {
    "asg_name": "autoscaling_group",
    "db_cluster": "db_cluster",
    "replication_group": "cache_replication_group",
    "domain_name": "search_domain",
}
# Read-only resources experiments probe (filled the same way, not allow-listed).
FAULT_PROBE_KEYS = {"target_group": "target_group"}
# Choices *inside* a fault's resource (a failover target, a node group): "" means "let the
# action choose within the resource". Always written into the fault's configuration, so an
# environment default (PEAKREADY_DB_FAILOVER_TARGET, ...) never picks one behind the plan.
FAULT_SELECTOR_KEYS = {"target_instance": "", "node_group": "", "node_id": ""}
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
}
# Arguments of probes that name what a steady state reads (read-only, not allow-listed).
PROBE_ARGUMENT_KINDS = {"target_group_name": "target_group"}

# The live-SLO steady state defaults to the plan's recovery SLO, so "the steady state
# held" and "recovered" mean the same numbers: experiment variable -> checks.recovery key.
FAULT_SLO_KEYS = {"max_p95_ms": "p95_ms", "max_error_rate": "error_rate"}

# Values a user must set in a template; any value containing it is rejected.
PLACEHOLDER = "CHANGE-ME"

DEFAULTS: dict[str, Any] = {
    "target": {"kind": "sandbox", "region": names.REGION, "storefront_url": None,
               "resources": {**names.RESOURCES, "web_acl": names.WEB_ACL,
                             "search_domain": names.SEARCH_DOMAIN},
               "web_acl": None,
               "alarms": [], "allow": {"account_ids": [], "resources": [], "tags": {}}},
    "load": {"locustfile": "scenarios/storefront.py", "user_classes": [],
             "profile": None, "scale": 1.0, "speed": 1.0, "duration_s": None,
             "workers": 1, "max_users": 500},
    "faults": [],
    "checks": {},
    "stop_conditions": {"error_rate": None, "alarms": []},
}


@dataclass(frozen=True)
class FaultResource:
    """One resource a fault's actions will act on, and where its name came from."""

    index: int  # faults[index]
    fault: str
    kind: str
    name: str
    variable: str | None  # the experiment configuration variable, None for a literal
    source: str  # "plan", "env NAME", "experiment default", "experiment"

    @property
    def from_plan(self) -> bool:
        return self.source == "plan"


@dataclass(frozen=True)
class Plan:
    """A validated plan. ``data`` is the resolved dict; use ``resolved()`` for a copy."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def kind(self) -> str:
        return self.data["target"]["kind"]

    @property
    def target(self) -> dict[str, Any]:
        return self.data["target"]

    @property
    def faults(self) -> list[dict[str, Any]]:
        return self.data["faults"]

    @property
    def duration_s(self) -> float | None:
        """The load's length after speed and duration (None if the profile is unknown)."""
        return self.data.get("_duration_s")

    def resolved(self) -> dict[str, Any]:
        """The plan as it will run, for ``plan.yaml`` in the run folder (no secrets:
        credentials never live in a plan)."""
        out = copy.deepcopy(self.data)
        out.pop("_duration_s", None)
        return out

    def with_target(self, kind: str) -> Plan:
        """The same plan against another target kind (``--target``), re-validated."""
        raw = self.resolved()
        raw["target"]["kind"] = kind
        return parse_plan(raw, self.path)

    def fault_resources(self, environ: Mapping[str, str] | None = None) -> list[FaultResource]:
        """Every resource the faults' actions will act on, resolved as ``chaos run`` will
        resolve it: the plan's configuration (passed as ``--var-file``) first, else the
        environment the experiment inherits (``environ``, default ``os.environ``), else the
        experiment's own default; literals in an action's arguments count too."""
        out: list[FaultResource] = []
        env = os.environ if environ is None else environ
        for i, fault in enumerate(self.faults):
            path = _find(fault["experiment"], _bases(self.path)) or Path(fault["experiment"])
            doc = _read_experiment(path)
            out.extend(resolve_fault_resources(i, fault["name"], doc, fault["configuration"],
                                               env))
        return out

    def probed_resources(self, environ: Mapping[str, str] | None = None) -> list[FaultResource]:
        """What the faults' probes read (steady state), resolved the same way; a probe
        on the experiment's default resource judges somebody else's resource."""
        env = os.environ if environ is None else environ
        out: list[FaultResource] = []
        for i, fault in enumerate(self.faults):
            path = _find(fault["experiment"], _bases(self.path)) or Path(fault["experiment"])
            out.extend(resolve_fault_resources(i, fault["name"], _read_experiment(path),
                                               fault["configuration"], env, probes=True))
        return out

    def unnamed_resources(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """One line per resource a fault would act on that the plan does not name: its
        experiment's default (or the environment) would choose it and the allow-list would
        never see it. Pure apart from reading the experiment files."""
        problems, seen = [], set()
        for r in self.fault_resources(environ):
            if r.variable is None or r.from_plan or (r.index, r.variable) in seen:
                continue
            seen.add((r.index, r.variable))
            named = f" {r.name}" if r.name else ""
            where = f"faults[{r.index}].configuration.{r.variable}"
            field = next((f"target.resources.{k}" for v, k in FAULT_RESOURCE_KEYS.items()
                          if v == r.variable), None)
            fix = f"set {field} (or {where})" if field else f"set {where}"
            problems.append(f"{field or where}: fault {r.fault} would act on the {r.kind}"
                            f"{named} taken from {r.source}, which the plan does not name "
                            f"and the allow-list never checks; {fix}")
        for i, fault in enumerate(self.faults):
            path = _find(fault["experiment"], _bases(self.path)) or Path(fault["experiment"])
            for action in unchecked_actions(_read_experiment(path)):
                problems.append(f"faults[{i}].experiment: fault {fault['name']}: {action} "
                                "names no resource the allow-list can check (it would select "
                                "by tags, filters, zone or its own default); use an action "
                                f"that takes {' or '.join(NAMING_ARGUMENTS)}")
        return problems

    def touched_resources(self, environ: Mapping[str, str] | None = None
                          ) -> list[tuple[str, str, str]]:
        """``(fault name, resource kind, resource name)`` for every resource a fault acts on
        (see ``fault_resources``), once each."""
        out: list[tuple[str, str, str]] = []
        for r in self.fault_resources(environ):
            item = (r.fault, r.kind, r.name)
            if r.name and item not in out:
                out.append(item)
        return out


_REFERENCE = re.compile(r"\$\{([^}]+)\}")


def _read_experiment(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BadInput(f"{path}: cannot read the experiment: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def _configuration_values(declared: Mapping[str, Any], given: Mapping[str, Any],
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


def resolve_fault_resources(index: int, fault: str, experiment: Mapping[str, Any],
                            configuration: Mapping[str, Any], environ: Mapping[str, str],
                            probes: bool = False) -> list[FaultResource]:
    """The resources named by the fault actions (method and rollbacks) of one parsed
    experiment, once its configuration is substituted (pure). ``probes``: what its probes
    (steady state, method, rollbacks) read instead."""
    declared = experiment.get("configuration") or {}
    values = _configuration_values(declared if isinstance(declared, dict) else {},
                                   configuration, environ)
    hypothesis = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    activities = [a for section in ("method", "rollbacks")
                  for a in (experiment.get(section) or []) if isinstance(a, dict)]
    if probes:
        activities = [a for a in hypothesis if isinstance(a, dict)] + activities
    wanted, kinds = ("probe", PROBE_ARGUMENT_KINDS) if probes else ("action",
                                                                    ACTION_ARGUMENT_KINDS)
    out: list[FaultResource] = []
    for activity in activities:
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
                name, variable, source = _substitute(str(item), values)
                r = FaultResource(index, fault, kind, name, variable, source)
                if r not in out:
                    out.append(r)
    return out


# Modules whose actions act on AWS resources (the allow-list must see which ones), and the
# arguments one of which such an action must name (a failover target alone is not enough).
AWS_ACTION_MODULES = ("chaosaws", "peakready.chaos")
NAMING_ARGUMENTS = ("asg_name", "asg_names", "db_cluster_identifier", "replication_group_id")


def unchecked_actions(experiment: Mapping[str, Any]) -> list[str]:
    """AWS fault actions (method and rollbacks) that name none of the resource arguments
    peakready reads, e.g. chaostoolkit-aws' ``terminate_random_instances(az=...)`` or
    ``suspend_processes(tags=...)``: what they act on cannot be allow-listed (pure)."""
    out = []
    for section in ("method", "rollbacks"):
        for activity in experiment.get(section) or []:
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


def _substitute(text: str, values: Mapping[str, tuple[Any, str]]) -> tuple[str, str | None, str]:
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


def load_plan(path: str | Path) -> Plan:
    """Read, validate and resolve the plan at ``path``; BadInput names the field."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: plan file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise BadInput(f"{path}: not valid YAML{where}: "
                       f"{getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    return parse_plan(raw, path)


def parse_plan(raw: Any, path: str | Path = "plan.yaml") -> Plan:
    """Validate and resolve an already parsed plan (pure apart from reading the files it
    names: profile, locustfile, experiments)."""
    path = Path(path)
    v = _Validator(path)
    if not isinstance(raw, dict):
        v.fail("", "must be a mapping (name, target, load, faults, checks, stop_conditions)")
    v.unknown("", raw, TOP_LEVEL)
    data: dict[str, Any] = {
        "name": v.text("name", raw.get("name", path.stem)),
        "description": v.text("description", raw.get("description", ""), empty=True),
    }
    data["target"] = _target(v, raw.get("target"))
    data["load"], duration = _load(v, raw.get("load"))
    _attacks_allowed(v, data["target"], data["load"])
    data["phases"] = _phases(v, raw.get("phases"), duration)
    data["checks"] = _checks(v, raw.get("checks"))
    data["faults"] = _faults(v, raw.get("faults"), data["target"], duration,
                             data["checks"].get("recovery") or {})
    _check_selectors(v, data["checks"], data["phases"], [f["name"] for f in data["faults"]])
    data["stop_conditions"] = _stop_conditions(v, raw.get("stop_conditions"))
    v.no_placeholders(data)
    data["_duration_s"] = duration
    return Plan(path, data)


# --- field validation -------------------------------------------------------------------

class _Validator:
    def __init__(self, path: Path):
        self.path = path
        self.bases = _bases(path)

    def fail(self, field: str, message: str) -> None:
        where = f"{field}: " if field else ""
        raise BadInput(f"{self.path}: {where}{message}")

    def mapping(self, field: str, value: Any, default: dict | None = None) -> dict:
        if value is None:
            return dict(default or {})
        if not isinstance(value, dict):
            self.fail(field, "must be a mapping")
        return value

    def unknown(self, field: str, value: dict, known: set[str]) -> None:
        extra = sorted(set(map(str, value)) - known)
        if extra:
            prefix = f"{field}." if field else ""
            self.fail(f"{prefix}{extra[0]}", f"unknown field (known: {', '.join(sorted(known))})")

    def text(self, field: str, value: Any, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(field, "must be a non-empty string" if not empty else "must be a string")
        return value

    def number(self, field: str, value: Any, minimum: float = 0.0, strict: bool = False,
               maximum: float | None = None) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value) and (value > minimum if strict else value >= minimum) \
            and (maximum is None or value <= maximum)
        if not ok:
            rel = ">" if strict else ">="
            upper = f" and <= {maximum:g}" if maximum is not None else ""
            self.fail(field, f"must be a number {rel} {minimum:g}{upper}, got {value!r}")
        return float(value)

    def integer(self, field: str, value: Any, minimum: int = 1) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(field, f"must be an integer >= {minimum}, got {value!r}")
        return int(value)

    def strings(self, field: str, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            self.fail(field, "must be a list of non-empty strings")
        return list(value)

    def file(self, field: str, value: Any, suffixes: tuple[str, ...] = ()) -> str:
        self.text(field, value)
        if PLACEHOLDER in value:
            self.fail(field, f"set this value (marked {PLACEHOLDER})")
        found = _find(value, self.bases)
        if found is None:
            self.fail(field, f"file not found: {value}")
        if suffixes and found.suffix not in suffixes:
            self.fail(field, f"must be a {' or '.join(suffixes)} file: {value}")
        return value if Path(value).is_file() else str(found)

    def no_placeholders(self, data: Any, field: str = "") -> None:
        """Every value a user must set in a template is reported by its field."""
        if isinstance(data, dict):
            for key, value in data.items():
                self.no_placeholders(value, f"{field}.{key}" if field else str(key))
        elif isinstance(data, list):
            for i, value in enumerate(data):
                self.no_placeholders(value, f"{field}[{i}]")
        elif isinstance(data, str) and PLACEHOLDER in data:
            self.fail(field, f"set this value (marked {PLACEHOLDER}): {data}")


def _bases(path: Path) -> list[Path]:
    here = path.resolve().parent
    return [Path.cwd(), here.parent, here]


def _find(value: str, bases: list[Path]) -> Path | None:
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for base in bases:
        if (base / candidate).is_file():
            return (base / candidate).resolve()
    return None


ACCOUNT_ID = re.compile(r"^\d{12}$")


def _target(v: _Validator, raw: Any) -> dict[str, Any]:
    raw = v.mapping("target", raw)
    v.unknown("target", raw, TARGET_KEYS)
    d = DEFAULTS["target"]
    kind = raw.get("kind", d["kind"])
    if kind not in ("sandbox", "aws"):
        v.fail("target.kind", f"must be sandbox or aws, got {kind!r}")
    out: dict[str, Any] = {"kind": kind, "region": v.text("target.region",
                                                           raw.get("region", d["region"]))}
    url = raw.get("storefront_url")
    if url is not None and not (isinstance(url, str) and re.match(r"^https?://\S+$", url)
                                or isinstance(url, str) and PLACEHOLDER in url):
        v.fail("target.storefront_url", f"must be an http(s) URL, got {url!r}")
    if kind == "aws" and not url:
        v.fail("target.storefront_url", "required for an aws target (the public URL)")
    out["storefront_url"] = url

    resources = v.mapping("target.resources", raw.get("resources"))
    v.unknown("target.resources", resources, RESOURCE_KINDS)
    merged = dict(d["resources"]) if kind == "sandbox" else {}
    for key, value in resources.items():
        merged[key] = v.text(f"target.resources.{key}", value)
    out["resources"] = merged
    out["alarms"] = v.strings("target.alarms", raw.get("alarms"))

    allow = v.mapping("target.allow", raw.get("allow"))
    v.unknown("target.allow", allow, {"account_ids", "resources", "tags"})
    ids = allow.get("account_ids") or []
    if not isinstance(ids, list):
        v.fail("target.allow.account_ids", "must be a list of 12-digit account ids")
    accounts = []
    for i, acc in enumerate(ids):
        acc = f"{acc:012d}" if isinstance(acc, int) and not isinstance(acc, bool) else acc
        if not isinstance(acc, str) or not (ACCOUNT_ID.match(acc) or PLACEHOLDER in acc):
            v.fail(f"target.allow.account_ids[{i}]", f"must be a 12-digit account id, got {acc!r}")
        accounts.append(acc)
    if kind == "aws" and not accounts:
        v.fail("target.allow.account_ids", "required for an aws target: the account(s) "
                                           "faults may run in")
    tags = v.mapping("target.allow.tags", allow.get("tags"))
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            v.fail(f"target.allow.tags.{key}", "tags must map strings to strings")
    out["allow"] = {"account_ids": accounts,
                    "resources": v.strings("target.allow.resources", allow.get("resources")),
                    "tags": dict(tags)}
    out["web_acl"] = None
    if raw.get("web_acl") is not None:  # a Web ACL JSON that AWS would refuse stops here
        from peakready.waf import webacl

        path = v.file("target.web_acl", raw["web_acl"], (".json",))
        webacl.load_file(_find(path, v.bases) or path, "target.web_acl")
        out["web_acl"] = path
    return out


def _attacks_allowed(v: _Validator, target: dict[str, Any], load: dict[str, Any]) -> None:
    """Attack traffic against a real shop needs two explicit yeses: the Web ACL is in the
    allow-list and the plan says the attacks are intended."""
    attacks = load.get("attacks")
    if not attacks or target["kind"] != "aws":
        return
    acl = target["resources"].get("web_acl")
    if not acl:
        v.fail("target.resources.web_acl", "required with load.attacks on an aws target: "
                                           "the Web ACL the attacks are aimed at")
    if acl not in target["allow"]["resources"]:
        v.fail("target.allow.resources", f"must list the Web ACL {acl!r}: load.attacks sends "
                                         "attack traffic to it")
    if attacks.get("intended") is not True:
        v.fail("load.attacks.intended", "must be true on an aws target: attack traffic "
                                        "against a real storefront is intended")


def _load(v: _Validator, raw: Any) -> tuple[dict[str, Any], float | None]:
    raw = v.mapping("load", raw)
    v.unknown("load", raw, LOAD_KEYS)
    d = DEFAULTS["load"]
    if raw.get("profile") is None:
        v.fail("load.profile", "required: a CSV t_s,rps (e.g. scenarios/profiles/flash-sale.csv)")
    out = {
        "locustfile": v.file("load.locustfile", raw.get("locustfile", d["locustfile"]), (".py",)),
        "user_classes": v.strings("load.user_classes", raw.get("user_classes")),
        "profile": v.file("load.profile", raw["profile"], (".csv",)),
        "scale": v.number("load.scale", raw.get("scale", d["scale"]), strict=True),
        "speed": v.number("load.speed", raw.get("speed", d["speed"]), strict=True),
        "duration_s": None,
        "workers": v.integer("load.workers", raw.get("workers", d["workers"])),
        "max_users": v.integer("load.max_users", raw.get("max_users", d["max_users"])),
    }
    if raw.get("duration_s") is not None:
        out["duration_s"] = v.number("load.duration_s", raw["duration_s"], strict=True)
    from peakready.waf import loadmix

    try:  # the WAF traffic mix (docs/waf.md)
        out["attacks"] = loadmix.parse_attacks(raw.get("attacks"),
                                               find=lambda p: _find(p, v.bases))
        out["clients"] = loadmix.parse_clients(raw.get("clients"))
        out["tricky_shoppers"] = loadmix._number("load.tricky_shoppers",
                                                 raw.get("tricky_shoppers", 0.0), 0.0, 1.0)
    except BadInput as exc:
        v.fail("", str(exc))
    from peakready.profiles import load_profile

    try:
        profile = load_profile(_find(out["profile"], v.bases) or out["profile"])
    except BadInput as exc:
        v.fail("load.profile", str(exc))
    duration = profile.duration_s / out["speed"]
    if out["duration_s"] is not None:
        duration = min(duration, out["duration_s"])
    return out, duration


def _phases(v: _Validator, raw: Any, duration: float | None) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    _external(v, "phases", raw)
    if not isinstance(raw, list):
        v.fail("phases", "must be a list of {name, start_s, end_s}")
    for i, phase in enumerate(raw):
        if not isinstance(phase, dict):
            v.fail(f"phases[{i}]", "must be a mapping with name, start_s, end_s")
        v.text(f"phases[{i}].name", phase.get("name"))
        start = v.number(f"phases[{i}].start_s", phase.get("start_s"))
        end = v.number(f"phases[{i}].end_s", phase.get("end_s"))
        if end <= start:
            v.fail(f"phases[{i}].end_s", f"must be after start_s ({start:g})")
        if duration is not None and start >= duration:
            v.fail(f"phases[{i}].start_s", f"{start:g} s is after the load ends ({duration:g} s)")
    return copy.deepcopy(raw)


def _faults(v: _Validator, raw: Any, target: dict[str, Any], duration: float | None,
            recovery: dict[str, Any]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        v.fail("faults", "must be a list of {name, experiment, at_s, configuration}")
    out, names = [], set()
    for i, fault in enumerate(raw):
        where = f"faults[{i}]"
        if not isinstance(fault, dict):
            v.fail(where, "must be a mapping with experiment, at_s and optional name, "
                          "configuration")
        v.unknown(where, fault, FAULT_KEYS)
        if fault.get("experiment") is None:
            v.fail(f"{where}.experiment", "required: a Chaos Toolkit experiment (JSON)")
        experiment = v.file(f"{where}.experiment", fault["experiment"], (".json", ".yaml",
                                                                          ".yml"))
        declared = _experiment_configuration(v, f"{where}.experiment", experiment)
        _validate_experiment(v, f"{where}.experiment", experiment)
        unchecked = unchecked_actions(_read_experiment(_find(experiment, v.bases)))
        if unchecked:
            v.fail(f"{where}.experiment", f"{unchecked[0]} names no resource the allow-list "
                   f"can check; use an action that takes {' or '.join(NAMING_ARGUMENTS)}")
        name = v.text(f"{where}.name", fault.get("name", Path(experiment).stem))
        if name in names:
            v.fail(f"{where}.name", f"duplicate fault name {name!r}")
        names.add(name)
        if fault.get("at_s") is None:
            v.fail(f"{where}.at_s", "required: seconds after the load starts")
        at_s = v.number(f"{where}.at_s", fault["at_s"])
        if duration is not None and at_s >= duration:
            v.fail(f"{where}.at_s", f"{at_s:g} s is after the load ends ({duration:g} s)")
        config = dict(v.mapping(f"{where}.configuration", fault.get("configuration")))
        numeric = _numeric_configuration(_read_experiment(_find(experiment, v.bases)))
        for key in config:
            if key not in declared:
                v.fail(f"{where}.configuration.{key}",
                       f"not a configuration variable of {experiment} "
                       f"(it has: {', '.join(sorted(declared))})")
            value = config[key]
            if key in numeric and (isinstance(value, bool) or not isinstance(
                    value, int if numeric[key] == "int" else int | float)):
                v.fail(f"{where}.configuration.{key}", f"must be a number ({numeric[key]}), "
                       f"got {value!r}")
        for key, kind in {**FAULT_RESOURCE_KEYS, **FAULT_PROBE_KEYS}.items():
            if key in declared and key not in config and target["resources"].get(kind):
                config[key] = target["resources"][kind]
        for key, choose in FAULT_SELECTOR_KEYS.items():
            if key in declared and key not in config:
                config[key] = choose
        for key, source in FAULT_SLO_KEYS.items():
            if key in declared and key not in config and recovery.get(source) is not None:
                config[key] = recovery[source]
        out.append({"name": name, "experiment": experiment, "at_s": at_s,
                    "configuration": config})
    return out


def _numeric_configuration(doc: Any) -> dict[str, str]:
    """Variables the experiment reads as numbers (``env_var_type`` int/float): a string
    there would break the experiment half-way (e.g. a pause of "abc" after the fault)."""
    config = doc.get("configuration") if isinstance(doc, dict) else None
    return {key: entry["env_var_type"] for key, entry in (config or {}).items()
            if isinstance(entry, dict) and entry.get("env_var_type") in ("int", "float")}


def _experiment_configuration(v: _Validator, field: str, experiment: str) -> set[str]:
    path = _find(experiment, v.bases)
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        v.fail(field, f"{experiment} is not valid {path.suffix[1:].upper()}: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("method"), list):
        v.fail(field, f"{experiment} is not a Chaos Toolkit experiment (no method list)")
    config = doc.get("configuration") or {}
    return set(config) if isinstance(config, dict) else set()


def _validate_experiment(v: _Validator, field: str, experiment: str) -> None:
    from peakready.chaos.validate import ExperimentInvalid, validate_experiment

    try:
        validate_experiment(_find(experiment, v.bases))
    except ExperimentInvalid as exc:
        v.fail(field, f"{experiment} does not validate (chaos validate): {exc}")


def _checks(v: _Validator, raw: Any) -> dict[str, Any]:
    raw = v.mapping("checks", raw)
    _external(v, "checks", raw)
    return copy.deepcopy(raw)


def _check_selectors(v: _Validator, checks: dict[str, Any], phases: list[dict] | None,
                     faults: list[str]) -> None:
    """A check naming a phase or fault the plan lacks fails here (the registry says which
    fields name phases and faults: analysis.checks.ref_errors)."""
    errors = _analysis("checks", "checks").ref_errors(
        checks, None if phases is None else [p["name"] for p in phases], faults)
    if errors:
        v.fail("", errors[0])


def _stop_conditions(v: _Validator, raw: Any) -> dict[str, Any]:
    raw = v.mapping("stop_conditions", raw)
    v.unknown("stop_conditions", raw, {"error_rate", "alarms"})
    out: dict[str, Any] = {"error_rate": None,
                           "alarms": v.strings("stop_conditions.alarms", raw.get("alarms"))}
    rate = raw.get("error_rate")
    if rate is not None:
        rate = v.mapping("stop_conditions.error_rate", rate)
        v.unknown("stop_conditions.error_rate", rate, {"max", "for_s"})
        out["error_rate"] = {
            "max": v.number("stop_conditions.error_rate.max", rate.get("max"), strict=True,
                            maximum=1.0),
            "for_s": v.number("stop_conditions.error_rate.for_s", rate.get("for_s", 10.0),
                              strict=True),
        }
    return out


def _external(v: _Validator, module: str, value: Any) -> None:
    """Run analysis's own validator for ``phases`` / ``checks`` (one dialect: messages
    name the field)."""
    errors = _analysis(module, module).validate(value)
    if errors:
        v.fail("", errors[0])


def _analysis(module: str, field: str) -> Any:
    """``analysis.<module>``, imported here (not at the top: the plan loader stays light)
    and never optional: a broken analysis install must refuse the plan, not load it with
    unvalidated checks."""
    import importlib

    try:
        return importlib.import_module(f"analysis.{module}")
    except ImportError as exc:
        raise BadInput(f"{field}: cannot be validated: the analysis package does not import "
                       f"({type(exc).__name__}: {exc})") from None
