"""Where a fault action keeps what it changed, so its rollback (a later activity, maybe a
later ``chaos run`` process after a crash) can put back exactly that.

One JSON file per resource under ``PEAKREADY_CHAOS_STATE_DIR`` (the run sets it), else
the system temp folder; an action may name its own file (``saved_path``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["forget", "recall", "remember", "state_path"]


def state_path(kind: str, name: str, saved_path: str | None = None) -> Path:
    """The file that holds ``kind`` ``name``'s state before a fault changed it."""
    if saved_path:
        return Path(saved_path)
    base = os.environ.get("PEAKREADY_CHAOS_STATE_DIR") or tempfile.gettempdir()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return Path(base) / f"peakready-{kind}-{safe}.before.json"


def remember(path: Path, state: dict[str, Any]) -> None:
    """Write the state before the change (atomically: a rollback never reads half a
    file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def recall(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when nothing was changed (or it was restored already)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)
