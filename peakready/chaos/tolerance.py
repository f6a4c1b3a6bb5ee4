"""Tolerance probes: Chaos Toolkit passes the probe's output as ``value``. They let a
probe return numbers (kept in the journal as evidence) while the tolerance judges them."""

from __future__ import annotations

from typing import Any

__all__ = ["at_least", "ok"]


def ok(value: dict[str, Any] | None = None) -> bool:
    """The probe's ``ok`` field is true (e.g. ``peakready.chaos.live.slo``)."""
    return bool(isinstance(value, dict) and value.get("ok") is True)


def at_least(value: float | None = None, minimum: float = 1) -> bool:
    """A count (healthy targets, instances) is at least ``minimum``."""
    return value is not None and float(value) >= float(minimum)
