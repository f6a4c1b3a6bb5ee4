"""Validate an experiment the way ``chaos validate`` does, in this process.

``chaos validate`` is ``load_experiment`` + ``ensure_experiment_is_valid``; calling them
directly takes a fraction of a second instead of a process start per experiment, so a plan
can be refused before anything (a sandbox, a load) is started.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["ExperimentInvalid", "validate_experiment"]

_VALID: set[tuple[str, int]] = set()  # (file, mtime) that validated in this process


class ExperimentInvalid(ValueError):
    """The experiment does not validate; the message is Chaos Toolkit's."""


def validate_experiment(path: str | Path) -> None:
    """Raise ExperimentInvalid with Chaos Toolkit's reason when ``path`` does not validate
    (syntax, activities, python providers importable with matching arguments)."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    path = Path(path).resolve()
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise ExperimentInvalid(f"cannot read {path}: {exc.strerror}") from None
    if key in _VALID:
        return
    logger = logging.getLogger("chaostoolkit")
    level, logger.level = logger.level, logging.CRITICAL + 1  # its own log lines are noise here
    try:
        ensure_experiment_is_valid(load_experiment(str(path), {}))
    except ChaosException as exc:
        raise ExperimentInvalid(str(exc).strip().splitlines()[0] if str(exc).strip()
                                else type(exc).__name__) from None
    except (ImportError, ValueError, TypeError, AttributeError) as exc:
        raise ExperimentInvalid(f"{type(exc).__name__}: {exc}") from None
    finally:
        logger.level = level
    _VALID.add(key)
