"""Exit codes of the design and the exceptions that map onto them.

Raising ``BadInput`` anywhere before load or faults start makes the CLI print one line
and exit 2, so validation code never has to know about ``sys.exit``.
"""

from __future__ import annotations

EXIT_PASSED = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130  # the shell convention for Ctrl-C; data is kept and analysed


class PeakreadyError(Exception):
    """Base class: ``exit_code`` says how the CLI ends."""

    exit_code = EXIT_BAD_INPUT


class BadInput(PeakreadyError):
    """Malformed plan/profile/experiment, unreachable host, missing credentials,
    a resource outside the allow-list: reported before anything is touched."""

    exit_code = EXIT_BAD_INPUT


class Aborted(PeakreadyError):
    """A stop condition fired; faults and load were stopped."""

    exit_code = EXIT_ABORTED
