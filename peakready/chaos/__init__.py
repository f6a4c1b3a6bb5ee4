"""Chaos Toolkit building blocks peakready adds where chaostoolkit-aws is wrong or missing.

- ``live``: steady-state probes on the running load's user-facing SLO (``live.json``)
- ``asg``, ``rds``, ``elasticache``: AWS actions and probes (see research/chaos-pitfalls.md)
- ``journal``: read a journal into an outcome that ``chaos run``'s exit code gets wrong
- ``runner``: one experiment as a ``chaos run`` subprocess that can be stopped cleanly
- ``spec``: one planned fault with its experiment, read once when the plan loads
- ``semantics``: what an experiment will touch (configuration substitution, resources
  acted on, unchecked actions), pure; ``safety``: the preflight and dry run built on it
- ``validate``: ``chaos validate`` in-process

Modules used as Chaos Toolkit providers import only the standard library and boto3 at
module level, so ``chaos validate`` and ``chaos run`` load them quickly.
"""
