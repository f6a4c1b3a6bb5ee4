"""Validate an experiment the way ``chaos validate`` does, in this process.

``chaos validate`` is ``load_experiment`` + ``ensure_experiment_is_valid``; calling them
directly takes a fraction of a second instead of a process start per experiment, so a plan
can be refused before anything (a sandbox, a load) is started. A plan's faults are
validated from the document the plan already read (``validate_spec``): ``load_experiment``
of a local file is only the parse (JSON/YAML by extension), so the result is the same.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from peakready.chaos.spec import FaultSpec

__all__ = ["ExperimentInvalid", "validate_document", "validate_experiment", "validate_spec"]

_VALID: set[Hashable] = set()  # (file, stamp) that validated in this process


class ExperimentInvalid(ValueError):
    """The experiment does not validate; the message is Chaos Toolkit's."""


def validate_experiment(path: str | Path) -> None:
    """Raise ExperimentInvalid with Chaos Toolkit's reason when ``path`` does not validate
    (syntax, activities, python providers importable with matching arguments)."""
    from chaoslib.loader import load_experiment

    path = Path(path).resolve()
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise ExperimentInvalid(f"cannot read {path}: {exc.strerror}") from None
    _validate(key, lambda: load_experiment(str(path), {}))


def validate_document(path: str | Path, document: Any, stamp: Hashable | None) -> None:
    """``validate_experiment`` of an experiment already parsed from ``path`` when the file
    had ``stamp`` (``peakready.chaos.spec.read_experiment``): the file is not read again."""
    key = ("document", str(Path(path).resolve()), stamp) if stamp is not None else None
    _validate(key, lambda: copy.deepcopy(document))


def validate_spec(spec: FaultSpec) -> None:
    """``validate_document`` of a planned fault's experiment (``spec.document``)."""
    validate_document(spec.path, spec.document, spec.stamp)


def _validate(key: Hashable | None, load: Callable[[], Any]) -> None:
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    if key is not None and key in _VALID:
        return
    logger = logging.getLogger("chaostoolkit")
    level, logger.level = logger.level, logging.CRITICAL + 1  # its own log lines are noise here
    try:
        ensure_experiment_is_valid(load())
    except ChaosException as exc:
        raise ExperimentInvalid(str(exc).strip().splitlines()[0] if str(exc).strip()
                                else type(exc).__name__) from None
    except (ImportError, ValueError, TypeError, AttributeError) as exc:
        raise ExperimentInvalid(f"{type(exc).__name__}: {exc}") from None
    finally:
        logger.level = level
    if key is not None:
        _VALID.add(key)
