"""CloudWatch's lag on AWS, in one place (import-light: the CLI's help text reads it).

CloudWatch lags 1-3 minutes on AWS: a run waits this long after its end before it
collects, and ``peakready collect`` collects this far past the run's end by default.
"""

from __future__ import annotations

AWS_SETTLE_S = 120.0
