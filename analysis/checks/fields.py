"""The one validation dialect of plan ``checks``: every message names the field
(``checks.latency[0].max_ms: must be a number > 0``), and a validator appends to the list
it is given so the plan loader can report the first problem and count the rest."""

from __future__ import annotations

import math
from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(errors: list[str], where: str, obj: dict, key: str, *, required: bool = True,
           lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           integer: bool = False) -> None:
    if key not in obj or obj[key] is None:
        if required:
            errors.append(f"{where}.{key}: required")
        return
    value = obj[key]
    bounds = []
    if lo is not None:
        bounds.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        bounds.append(f"<= {hi}")
    kind = "an integer" if integer else "a number"
    message = f"{where}.{key}: must be {kind}" + (f" {' and '.join(bounds)}" if bounds else "")
    if not is_number(value) or (integer and int(value) != value):
        errors.append(message)
    elif (lo is not None and (value <= lo if lo_open else value < lo)) or (
            hi is not None and value > hi):
        errors.append(message)


def known(errors: list[str], where: str, obj: dict, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)} "
                      f"(allowed: {', '.join(sorted(allowed))})")


def selector(errors: list[str], where: str, obj: dict, key: str) -> None:
    value = obj.get(key, "*")
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}.{key}: must be a non-empty string ('*' for all)")


def mapping(errors: list[str], where: str, value: Any) -> bool:
    if not isinstance(value, dict):
        errors.append(f"{where}: must be a mapping")
        return False
    return True


def items(errors: list[str], where: str, value: Any, shape: str) -> list[tuple[str, dict]]:
    """A list-valued kind (``latency: [...]``): its mappings with their field paths."""
    if not isinstance(value, list):
        errors.append(f"{where}: must be a list of {shape}")
        return []
    return [(f"{where}[{i}]", item) for i, item in enumerate(value)
            if mapping(errors, f"{where}[{i}]", item)]


def names(errors: list[str], where: str, obj: dict, key: str, what: str) -> None:
    value = obj.get(key)
    if value is not None and not (isinstance(value, list) and value
                                  and all(isinstance(a, str) for a in value)):
        errors.append(f"{where}.{key}: must be a non-empty list of {what} names")


def boolean(errors: list[str], where: str, obj: dict, key: str) -> None:
    if key in obj and not isinstance(obj[key], bool):
        errors.append(f"{where}.{key}: must be true or false")
