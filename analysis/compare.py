"""``peakready compare BASE_RUN RUN``: the regression comparison of two run folders, with
the plan's regression settings overridden from the command line, written to compare.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peakready.errors import BadInput

COMPARE_JSON = "compare.json"


def compare_runs(base_dir: Path, run_dir: Path, margin: float | None = None,
                 confidence: float | None = None) -> dict[str, Any]:
    """Compare RUN with BASE_RUN per endpoint; writes RUN/compare.json (JSON-safe) and
    returns the comparison.
    BadInput (one line naming the option) when a folder or a setting is bad."""
    from analysis import checks, load_run, regression
    from analysis.verdict import require_run_folder

    require_run_folder(base_dir, "BASE_RUN")
    require_run_folder(run_dir, "RUN")
    run = load_run(run_dir)
    cfg = dict(((run.plan.get("checks") or {}).get("regression")) or {})
    if margin is not None:
        cfg["margin"] = margin
    if confidence is not None:
        cfg["confidence"] = confidence
    errors = checks.validate({"regression": cfg})
    if errors:
        raise BadInput(errors[0].replace("checks.regression.", "--"))
    comparison = regression.compare(load_run(base_dir), run, cfg)
    (Path(run_dir) / COMPARE_JSON).write_text(json.dumps(checks.clean(comparison), indent=2))
    return comparison
