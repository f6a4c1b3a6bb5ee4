"""What a check says: the typed result every kind returns, and how it reads as JSON.

``CheckResult.to_dict()`` is exactly one entry of ``verdict.json``'s ``checks`` list (the
schema in docs/checks.md). A result also reads like that dict (``r["verdict"]``) so
notebooks and scripts written against verdict.json work on live results too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PASS, FAIL, SKIPPED, INCONCLUSIVE = "pass", "fail", "skipped", "inconclusive"
VERDICTS = (PASS, FAIL, SKIPPED, INCONCLUSIVE)
TIMELINE_FIG = "figures/timeline.png"


def display(value: Any, unit: str) -> str:
    """How a person reads the number: ratios as percentages, others with their unit."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ratio":
        return f"{float(value):.2%}"
    if isinstance(value, float | np.floating):
        v = float(value)
        text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1 else f"{v:.3g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None, rounded floats."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else round(float(value), 6)
    return value


@dataclass(frozen=True)
class CheckResult:
    """One verdict line: what was measured, over which window, against which threshold.

    ``verdict`` is ``skipped`` only when the evidence does not exist (and ``reason`` says
    which), ``inconclusive`` only when the evidence cannot decide (a baseline comparison).
    """

    name: str
    check: str
    verdict: str
    reason: str
    measured: Any = None
    threshold: Any = None
    comparison: str = "<="
    unit: str = ""
    window: dict[str, Any] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    figure: str | None = TIMELINE_FIG

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"check {self.name!r}: verdict {self.verdict!r} is not one of "
                             f"{', '.join(VERDICTS)}")
        object.__setattr__(self, "measured", clean(self.measured))
        object.__setattr__(self, "evidence", clean(self.evidence or {}))

    @property
    def measured_text(self) -> str:
        return display(self.measured, self.unit)

    @property
    def threshold_text(self) -> str:
        return "" if self.threshold is None else \
            f"{self.comparison} {display(self.threshold, self.unit)}"

    def to_dict(self) -> dict[str, Any]:
        """The verdict.json entry (key order kept stable for diffs of verdict files)."""
        return {"name": self.name, "check": self.check, "verdict": self.verdict,
                "reason": self.reason, "measured": self.measured,
                "threshold": self.threshold, "comparison": self.comparison,
                "unit": self.unit, "measured_text": self.measured_text,
                "threshold_text": self.threshold_text, "window": self.window,
                "evidence": self.evidence, "figure": self.figure}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)
