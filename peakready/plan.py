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
touches. Each experiment is read here once, into a ``FaultSpec`` carried on the ``Plan``;
what a fault touches is ``peakready.chaos.semantics``'s rule, asked of those specs.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from peakready.chaos import semantics
from peakready.chaos import spec as faultspec
from peakready.chaos.semantics import FAULT_RESOURCE_KEYS, NAMING_ARGUMENTS, FaultResource
from peakready.chaos.spec import (
    ExperimentUnreadable,
    FaultSpec,
    declared_configuration,
    numeric_keys,
)
from peakready.errors import BadInput
from peakready.sandbox.aws import names

__all__ = ["PLACEHOLDER", "Plan", "load_plan", "parse_plan"]

TOP_LEVEL = {"name", "description", "target", "load", "phases", "faults", "checks",
             "stop_conditions"}
TARGET_KEYS = {"kind", "region", "storefront_url", "resources", "alarms", "allow", "web_acl",
               "paging", "sandbox"}
SANDBOX_KEYS = {"search", "storefront"}  # how the sandbox is built (kind: sandbox only)
RESOURCE_KINDS = {"autoscaling_group", "load_balancer", "target_group", "db_cluster",
                  "cache_replication_group", "web_acl", "search_domain", "delivery_stream",
                  "log_bucket"}
LOAD_KEYS = {"locustfile", "user_classes", "profile", "scale", "speed", "duration_s",
             "workers", "max_users", "attacks", "clients", "tricky_shoppers", "closed_model",
             "users", "orders", "master"}
MASTER_KEYS = {"bind", "external_workers", "wait_s"}  # load.master: workers on other hosts
FAULT_KEYS = {"name", "experiment", "at_s", "configuration"}

# Experiment configuration keys naming a resource a fault acts on
# (semantics.FAULT_RESOURCE_KEYS) are filled from target.resources when a fault omits them.
# Read-only resources experiments probe (filled the same way, not allow-listed).
FAULT_PROBE_KEYS = {"target_group": "target_group"}
# Choices *inside* a fault's resource (a failover target, a node group): "" means "let the
# action choose within the resource". Always written into the fault's configuration, so an
# environment default (PEAKREADY_DB_FAILOVER_TARGET, ...) never picks one behind the plan.
FAULT_SELECTOR_KEYS = {"target_instance": "", "node_group": "", "node_id": ""}
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
class Plan:
    """A validated plan. ``data`` is the resolved dict; use ``resolved()`` for a copy.
    ``fault_specs`` holds each fault with its experiment, read once when the plan loaded
    (``peakready.chaos.spec``); the questions below are answered from them."""

    path: Path
    data: dict[str, Any]
    fault_specs: tuple[FaultSpec, ...] = ()

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

    def current(self) -> Plan:
        """The plan with each experiment as it is on disk now: the safety rails judge the
        files the run will use, which may have been edited since the plan loaded. An
        unchanged file is not read again (``FaultSpec.current``)."""
        specs = []
        for spec in self.fault_specs:
            try:
                specs.append(spec.current())
            except ExperimentUnreadable as exc:
                raise BadInput(f"{spec.path}: cannot read the experiment: {exc}") from None
        specs = tuple(specs)
        if all(a is b for a, b in zip(specs, self.fault_specs, strict=True)):
            return self
        return replace(self, fault_specs=specs)

    def fault_resources(self, environ: Mapping[str, str] | None = None) -> list[FaultResource]:
        """Every resource the faults' actions will act on, resolved as ``chaos run`` will
        resolve it (``semantics.acted_on``; ``environ`` defaults to ``os.environ``)."""
        env = os.environ if environ is None else environ
        return [r for spec in self.fault_specs for r in semantics.acted_on(spec, env)]

    def probed_resources(self, environ: Mapping[str, str] | None = None) -> list[FaultResource]:
        """What the faults' probes read (steady state), resolved the same way."""
        env = os.environ if environ is None else environ
        return [r for spec in self.fault_specs for r in semantics.probed(spec, env)]

    def unnamed_resources(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """One line per resource a fault would act on that the plan does not name, and per
        AWS action that names none (``semantics.unnamed_resources``): refused."""
        env = os.environ if environ is None else environ
        return semantics.unnamed_resources(self.fault_specs, env)

    def touched_resources(self, environ: Mapping[str, str] | None = None
                          ) -> list[tuple[str, str, str]]:
        """``(fault name, resource kind, resource name)`` for every resource a fault acts on
        (see ``fault_resources``), once each."""
        env = os.environ if environ is None else environ
        return semantics.touched_resources(self.fault_specs, env)


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
    specs = _faults(v, raw.get("faults"), data["target"], duration,
                    data["checks"].get("recovery") or {})
    data["faults"] = [spec.plan_entry() for spec in specs]
    _check_selectors(v, data["checks"], data["phases"], [f["name"] for f in data["faults"]])
    data["stop_conditions"] = _stop_conditions(v, raw.get("stop_conditions"))
    v.no_placeholders(data)
    data["_duration_s"] = duration
    return Plan(path, data, tuple(specs))


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
    v.unknown("target.allow", allow, {"account_ids", "resources", "tags", "topics"})
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
                    "tags": dict(tags),
                    "topics": v.strings("target.allow.topics", allow.get("topics"))}
    out["web_acl"] = None
    if raw.get("web_acl") is not None:  # a Web ACL JSON that AWS would refuse stops here
        from peakready.waf import webacl

        path = v.file("target.web_acl", raw["web_acl"], (".json",))
        webacl.load_file(_find(path, v.bases) or path, "target.web_acl")
        out["web_acl"] = path
    from peakready.paging import config as paging_config  # the alarm topics a run observes

    out["paging"] = paging_config.parse(v.fail, raw.get("paging"), out["allow"]["topics"])
    if raw.get("sandbox") is not None:
        out["sandbox"] = _sandbox(v, raw["sandbox"])
    return out


def _sandbox(v: _Validator, raw: Any) -> dict[str, Any]:
    """``target.sandbox``: the sandbox's search domain and storefront settings (the same
    fields as ``PEAKREADY_SEARCH`` / ``PEAKREADY_STOREFRONT``), checked now so a bad value
    stops the run before anything starts. Ignored by an aws target."""
    from peakready.sandbox.search import config as search_config
    from peakready.sandbox.storefront import config as storefront_config

    raw = v.mapping("target.sandbox", raw)
    v.unknown("target.sandbox", raw, SANDBOX_KEYS)
    out: dict[str, Any] = {}
    if raw.get("search") is not None:
        search = v.mapping("target.sandbox.search", raw["search"])
        try:
            search_config.from_dict(search)
        except search_config.SearchConfigError as exc:
            v.fail(f"target.sandbox.search.{exc.field}", exc.message)
        out["search"] = dict(search)
    if raw.get("storefront") is not None:
        storefront = v.mapping("target.sandbox.storefront", raw["storefront"])
        try:
            storefront_config.from_dict(storefront)
        except (ValueError, TypeError) as exc:
            v.fail("target.sandbox.storefront", str(exc))
        out["storefront"] = dict(storefront)
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


def _master(v: _Validator, raw: Any) -> dict[str, Any]:
    """``load.master``: where the Locust master listens and whether its workers are
    started elsewhere (``peakready worker --master HOST:PORT``, Kubernetes)."""
    raw = v.mapping("load.master", raw)
    v.unknown("load.master", raw, MASTER_KEYS)
    external = raw.get("external_workers", False)
    if not isinstance(external, bool):
        v.fail("load.master.external_workers", f"must be true or false, got {external!r}")
    out: dict[str, Any] = {"bind": v.text("load.master.bind", raw.get("bind", ""), empty=True),
                           "external_workers": external}
    if raw.get("wait_s") is not None:
        out["wait_s"] = v.number("load.master.wait_s", raw["wait_s"], strict=True)
    return out


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
    closed = raw.get("closed_model", False)
    if not isinstance(closed, bool):
        v.fail("load.closed_model", f"must be true or false, got {closed!r}")
    out["closed_model"] = closed
    if raw.get("users") is not None:
        if not closed:
            v.fail("load.users", "sets the pool of a closed model: needs closed_model: true")
        out["users"] = v.integer("load.users", raw["users"])
    if raw.get("orders") is not None:
        orders = v.mapping("load.orders", raw["orders"])
        v.unknown("load.orders", orders, {"request", "field"})
        out["orders"] = {"request": v.text("load.orders.request", orders.get("request")),
                         "field": v.text("load.orders.field", orders.get("field", "order_id"))}
    if raw.get("master") is not None:
        out["master"] = _master(v, raw["master"])
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
            recovery: dict[str, Any]) -> list[FaultSpec]:
    """Each fault validated and resolved, with its experiment read once (``FaultSpec``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        v.fail("faults", "must be a list of {name, experiment, at_s, configuration}")
    out: list[FaultSpec] = []
    names: set[str] = set()
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
        path = _find(experiment, v.bases)
        document, stamp = _experiment_document(v, f"{where}.experiment", experiment, path)
        declared = declared_configuration(document)
        _validate_experiment(v, f"{where}.experiment", experiment, path, document, stamp)
        why = semantics.sandbox_only(document) if target["kind"] == "aws" else None
        if why:
            v.fail(f"{where}.experiment", f"{experiment} only lands on the sandbox ({why}); "
                   "against an aws target it would change nothing: remove it and verify the "
                   "case from the load (docs/experiments.md)")
        unchecked = semantics.unchecked_actions(document)
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
        numeric = numeric_keys(declared)
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
        out.append(FaultSpec.build(i, name, experiment, path, at_s, config, document, stamp))
    return out


def _experiment_document(v: _Validator, field: str, experiment: str,
                         path: Path) -> tuple[dict[str, Any], Any]:
    """The experiment, parsed once (``read_experiment``), and its file stamp; refused
    unless it is a Chaos Toolkit experiment (a mapping with a method list)."""
    try:
        doc, stamp = faultspec.read_experiment(path)
    except ExperimentUnreadable as exc:
        v.fail(field, f"{experiment} is not valid {path.suffix[1:].upper()}: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("method"), list):
        v.fail(field, f"{experiment} is not a Chaos Toolkit experiment (no method list)")
    return doc, stamp


def _validate_experiment(v: _Validator, field: str, experiment: str, path: Path,
                         document: dict[str, Any], stamp: Any) -> None:
    """``chaos validate`` of the document read above (not the file again)."""
    from peakready.chaos.validate import ExperimentInvalid, validate_document

    try:
        validate_document(path, document, stamp)
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
