"""Chaos Toolkit building blocks peakready adds where chaostoolkit-aws is wrong or missing.

- ``live``: steady-state probes on the running load's user-facing SLO (``live.json``)
- ``asg``, ``rds``, ``elasticache``: AWS actions and probes (see research/chaos-pitfalls.md)
- ``journal``: read a journal into an outcome that ``chaos run``'s exit code gets wrong
- ``runner``: one experiment as a ``chaos run`` subprocess that can be stopped cleanly

Modules used as Chaos Toolkit providers import only the standard library and boto3 at
module level, so ``chaos validate`` and ``chaos run`` load them quickly.
"""
