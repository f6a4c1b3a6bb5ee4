"""Campaign load: Locust processes replaying a traffic profile as an arrival rate.

The engine side only: it never imports Locust (``peakready.load.openmodel`` is what the
Locust processes load, through peakready's plugin file). The names below are imported on
first use, so a Locust process importing ``peakready.load.openmodel`` (or the locustfile
check) does not pay for the engine's imports (pandas, the process runner).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LoadHandle": "peakready.load.process", "read_live": "peakready.load.process",
    "run_load": "peakready.load.process", "start_load": "peakready.load.process",
    "load_into_new_folder": "peakready.load.process",
    "DEFAULT_LOCUSTFILE": "peakready.load.settings", "LoadSettings": "peakready.load.settings",
    "check_host": "peakready.load.settings", "resolve": "peakready.load.settings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
