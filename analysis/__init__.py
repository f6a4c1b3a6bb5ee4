"""peakready analysis: a run folder in, a verdict with its evidence out.

``analyze(run_dir, baseline_dir=None)`` writes verdict.json, report.html, summary.md,
junit.xml and figures/*.png and returns the verdict dict; ``load_run(run_dir)`` gives the
run as tidy frames for notebooks and scripts. See docs/analysis.md and docs/checks.md.

The names are imported on first use: a plan loader that only needs ``analysis.checks``
(the check registry, to validate a plan) must not pay for matplotlib, scipy and the
report templates in every CLI process.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Run", "analyze", "load_run"]
_WHERE = {"Run": "analysis.load", "load_run": "analysis.load", "analyze": "analysis.verdict"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
