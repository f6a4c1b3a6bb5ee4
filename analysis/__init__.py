"""peakready analysis: a run folder in, a verdict with its evidence out.

``analyze(run_dir, baseline_dir=None)`` writes verdict.json, report.html, summary.md,
junit.xml and figures/*.png and returns the verdict dict; ``load_run(run_dir)`` gives the
run as tidy frames for notebooks and scripts. See docs/analysis.md and docs/checks.md.
"""

from analysis.load import Run, load_run
from analysis.verdict import analyze

__all__ = ["Run", "analyze", "load_run"]
