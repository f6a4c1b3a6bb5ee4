"""``peakready run`` orchestration: schedule, stop conditions, live view, the run loop."""

from peakready.run.engine import RunOptions, execute

__all__ = ["RunOptions", "execute"]
