"""Engine side of the locustfile check: run ``peakready.load.locustcheck`` in a child
process (the engine never imports Locust) and turn a failure into ``BadInput``.

A broken locustfile (it does not import, defines no user class, its options clash with
peakready's or Locust's, or it cannot be paced) is then one line naming the file and the
cause, exit 2, before a run folder exists and before any request is sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from peakready.errors import BadInput

CHECK_TIMEOUT_S = 120.0


def check_locustfile(plugin: Path | str, locustfile: Path | str, locust_args: list[str],
                     env: dict[str, str] | None = None) -> dict[str, Any]:
    """The user classes Locust will run; raises BadInput with the cause."""
    path = Path(locustfile).resolve()
    cmd = [sys.executable, "-m", "peakready.load.locustcheck", str(Path(plugin).resolve()),
           str(path), "--", *locust_args]
    # a neutral working folder, like the run folder the load runs in: no stray locust.conf
    with tempfile.TemporaryDirectory(prefix="peakready-check-") as cwd:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                                  env={**os.environ, **(env or {})},
                                  stdin=subprocess.DEVNULL, timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BadInput(f"locustfile {locustfile}: importing it took more than "
                           f"{CHECK_TIMEOUT_S:g} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    reason = lines[-1] if lines else _tail(proc.stderr) or f"exit code {proc.returncode}"
    raise BadInput(f"locustfile {locustfile}: {reason}")


def _tail(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
