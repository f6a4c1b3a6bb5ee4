"""peakready: will the storefront hold on campaign day?

The engine: command line, run orchestration, collectors, chaos actions and probes,
and the local sandbox. Analysis lives in the top-level ``analysis`` package.
"""

__version__ = "0.1.0"
