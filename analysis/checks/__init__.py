"""The plan's ``checks``: one module per kind in this package, each registering a
``CheckKind`` (see registry.py); this module only discovers them and runs them.

Every module here that is not infrastructure (``registry``, ``result``, ``context``,
``fields``) is a kind and is imported at package import, so adding a kind is adding one
file (plus its section in docs/checks.md). ``validate`` serves the plan loader,
``evaluate`` serves analysis; both walk the registry in dependency order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from analysis.checks.context import Context, context, fault_figure, slug
from analysis.checks.fields import known, mapping
from analysis.checks.registry import REGISTRY, CheckKind, Ref, SloLine, register
from analysis.checks.result import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    SKIPPED,
    TIMELINE_FIG,
    CheckResult,
    clean,
    display,
)

INFRASTRUCTURE = {"registry", "result", "context", "fields"}
DEFAULT_CHECKS: dict[str, Any] = {"integrity": {"orders": True, "sessions": True}}
"""What a plan without ``checks`` gets: the threshold-free checks (data integrity)."""

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in INFRASTRUCTURE and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def configurable() -> list[CheckKind]:
    return [k for k in REGISTRY.ordered() if k.validate is not None]


def validate(checks: Any) -> list[str]:
    """Errors naming the field (``checks.latency[0].max_ms: ...``); empty when fine."""
    if checks is None:
        return []
    errors: list[str] = []
    if not mapping(errors, "checks", checks):
        return errors
    kinds = configurable()
    known(errors, "checks", checks, {k.name for k in kinds})
    for kind in kinds:
        if checks.get(kind.name) is not None:
            kind.validate(errors, f"checks.{kind.name}", checks[kind.name])
    return errors


def refs(checks: Mapping[str, Any] | None) -> list[Ref]:
    """Every phase selector and fault name the checks' configs name (for the plan loader)."""
    out: list[Ref] = []
    for kind in REGISTRY.ordered():
        cfg = (checks or {}).get(kind.name)
        if kind.refs is not None and cfg:
            out += kind.refs(cfg)
    return out


def ref_errors(checks: Mapping[str, Any] | None, phases: list[str] | None,
               faults: list[str]) -> list[str]:
    """A check naming a phase or fault the plan does not have would only ever be skipped:
    a typo must not quietly drop a check from the gate. ``phases`` None: not declared."""
    errors = []
    for ref in refs(checks):
        name = ref.value[len("fault:"):] if ref.kind == "window" and \
            ref.value.startswith("fault:") else ref.value
        is_fault = ref.kind == "fault" or ref.value.startswith("fault:")
        if is_fault and name not in faults:
            errors.append(f"{ref.where}: no fault {name!r} in the plan "
                          f"(faults: {', '.join(faults) or 'none'})")
        elif not is_fault and ref.value not in ("*", "run", "faults") \
                and phases is not None and ref.value not in phases:
            errors.append(f"{ref.where}: no phase {ref.value!r} in the plan "
                          f"(phases: {', '.join(phases)})")
    return errors


def slo_lines(checks: Mapping[str, Any] | None) -> list[SloLine]:
    """The thresholds the plan's checks draw on the timeline figures."""
    out: list[SloLine] = []
    for kind in REGISTRY.ordered():
        cfg = (checks or {}).get(kind.name)
        if kind.slo_lines is not None and cfg:
            out += kind.slo_lines(cfg)
    return out


def evaluate(ctx: Context, checks: Mapping[str, Any] | None) -> list[CheckResult]:
    """Every declared kind (and every implicit one), in dependency order, each seeing the
    results of the kinds it ``needs``. A plan without ``checks`` gets ``DEFAULT_CHECKS``."""
    checks = DEFAULT_CHECKS if checks is None else checks
    ctx.prefetch(checks)
    done: dict[str, list[CheckResult]] = {}
    for kind in REGISTRY.ordered():
        cfg = checks.get(kind.name)
        if kind.needs_baseline and ctx.baseline is None:
            continue
        if not cfg and not kind.implicit:
            continue
        done[kind.name] = kind.evaluate(ctx, cfg, {n: done[n] for n in kind.needs if n in done})
    return [r for results in done.values() for r in results]


__all__ = ["CheckKind", "CheckResult", "Context", "DEFAULT_CHECKS", "FAIL", "INCONCLUSIVE",
           "PASS", "REGISTRY", "Ref", "SKIPPED", "SloLine", "TIMELINE_FIG", "clean", "context",
           "display", "evaluate", "fault_figure", "ref_errors", "refs", "register",
           "slo_lines", "slug", "validate"]
