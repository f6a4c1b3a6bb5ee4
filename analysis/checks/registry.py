"""The check kinds, in one place: each kind is one module of this package that calls
``register(CheckKind(...))`` at import, the way Locust's ``Events`` holds its hooks.

A kind declares everything the rest of peakready asks of it: its config validator (the
plan loader), its evaluator (analysis), the kinds whose results it reads (evaluated first),
whether it needs a baseline run, which phases/faults its config names (checked against the
plan so a typo cannot drop a check from the gate) and the SLO lines it draws on figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.checks.context import Context
    from analysis.checks.result import CheckResult

Validator = Callable[[list[str], str, Any], None]
"""``(errors, where, config)``: append one message per problem, each naming its field."""
Evaluator = Callable[["Context", Any, Mapping[str, list["CheckResult"]]], list["CheckResult"]]
"""``(ctx, config, done)``: ``done`` holds the results of the kinds named in ``needs``."""


@dataclass(frozen=True)
class Ref:
    """A window or fault a check's config names: ``kind`` is ``window`` (a phase selector:
    ``*``, ``run``, ``faults``, ``fault:NAME`` or a phase name) or ``fault`` (a fault name)."""

    where: str
    kind: str
    value: str


def phase_refs(kind: str) -> Callable[[Any], list[Ref]]:
    """The ``phase`` selectors of a list-valued kind (``checks.<kind>[i].phase``)."""
    def refs(cfg: Any) -> list[Ref]:
        return [Ref(f"checks.{kind}[{i}].phase", "window", str(item.get("phase", "*")))
                for i, item in enumerate(cfg or []) if isinstance(item, dict)]
    return refs


@dataclass(frozen=True)
class SloLine:
    """A threshold drawn on the timeline: ``metric`` is ``latency_ms`` or ``error_rate``."""

    metric: str
    label: str
    value: float


@dataclass
class Asks:
    """What a kind will ask of the samples, declared before any kind runs so an out-of-core
    store answers every kind's windows in one pass (``Context.prefetch``): ``windows``
    ``(start_s, end_s, quantiles)`` for ``ctx.stats``, ``grids`` ``(starts_s, width_s, q)``
    for ``ctx.slo_windows``."""

    windows: list[tuple[float, float, tuple[float, ...]]] = field(default_factory=list)
    grids: list[tuple[Any, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class CheckKind:
    name: str
    """The key under the plan's ``checks:`` and the ``check`` field of each result."""
    validate: Validator | None
    """``None``: nothing to configure (the kind is ``implicit`` and not a plan key)."""
    evaluate: Evaluator
    needs: tuple[str, ...] = ()
    needs_baseline: bool = False
    """Evaluated only when analysis has a baseline run (``ctx.baseline``)."""
    implicit: bool = False
    """Evaluated even when the plan does not declare it (its config is then ``None``)."""
    order: int = 100
    """Position in verdict.json among kinds that do not depend on each other."""
    refs: Callable[[Any], list[Ref]] | None = None
    slo_lines: Callable[[Any], list[SloLine]] | None = None
    asks: Callable[[Context, Any], Asks] | None = None
    """The windows the kind's evaluator will ask about (an optimisation: a window not
    declared is answered on its own when asked)."""
    fault_column: tuple[str, str] | None = None
    """``(column, number format)`` in the report's fault table, e.g. ``("recovery", "{:g} s")``:
    the kind's per-fault results carry ``evidence["fault"]``."""


class Registry:
    """Check kinds by name; ``ordered()`` is the evaluation order (``needs`` first)."""

    def __init__(self) -> None:
        self._kinds: dict[str, CheckKind] = {}

    def register(self, kind: CheckKind) -> CheckKind:
        if kind.name in self._kinds and self._kinds[kind.name] is not kind:
            raise ValueError(f"check kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        self._kinds.pop(name, None)

    @contextmanager
    def registered(self, kind: CheckKind) -> Iterator[CheckKind]:
        """A kind for the duration of a ``with`` block (tests, plug-ins tried once)."""
        self.register(kind)
        try:
            yield kind
        finally:
            self.unregister(kind.name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __getitem__(self, name: str) -> CheckKind:
        return self._kinds[name]

    def names(self) -> list[str]:
        return [k.name for k in self.ordered()]

    def ordered(self) -> list[CheckKind]:
        """Dependency order; among independent kinds by ``order``, then name. A kind that
        needs an unknown kind, or a cycle, is a programming error and raises."""
        pending = sorted(self._kinds.values(), key=lambda k: (k.order, k.name))
        for kind in pending:
            missing = [n for n in kind.needs if n not in self._kinds]
            if missing:
                raise ValueError(f"check kind {kind.name!r} needs unknown kind(s) "
                                 f"{', '.join(missing)}")
        out: list[CheckKind] = []
        placed: set[str] = set()
        while pending:
            ready = next((k for k in pending if set(k.needs) <= placed), None)
            if ready is None:
                raise ValueError("check kinds depend on each other in a cycle: "
                                 + ", ".join(k.name for k in pending))
            out.append(ready)
            placed.add(ready.name)
            pending.remove(ready)
        return out


REGISTRY = Registry()
register = REGISTRY.register
