"""The local sandbox: a real copy of the shop architecture on 127.0.0.1.

``start()`` spawns one supervisor daemon that owns every child process; state lives in
one folder (``state_dir``, else ``$PEAKREADY_SANDBOX_DIR``, else ``.peakready/sandbox``).
Kept import-light: the storefront and balancer processes import this package too.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

STATE_ENV = "PEAKREADY_SANDBOX_DIR"


def resolve_state_dir(state_dir: str | Path | None = None) -> Path:
    import os

    chosen = state_dir or os.environ.get(STATE_ENV) or Path(".peakready") / "sandbox"
    return Path(chosen).expanduser().resolve()


def start(state_dir: str | Path | None = None, instances: int = 2, lb_port: int = 0,
          timing: Any = None, storefront: dict | None = None, timeout: float = 90.0,
          search: dict | None = None) -> dict:
    """Start the sandbox daemon and return its status once everything is healthy.
    ``storefront``/``search`` override ``PEAKREADY_STOREFRONT``/``PEAKREADY_SEARCH``."""
    from peakready.sandbox import control

    return control.start(resolve_state_dir(state_dir), instances, lb_port, timing, storefront,
                         timeout, search)


def stop(state_dir: str | Path | None = None, timeout: float = 30.0) -> bool:
    """Stop the daemon (and so every child), then remove the state folder. True if a
    sandbox was running."""
    from peakready.sandbox import control

    return control.stop(resolve_state_dir(state_dir), timeout)


def status(state_dir: str | Path | None = None) -> dict:
    """The last status the daemon published (``state`` is ``stopped`` when none runs)."""
    from peakready.sandbox import control

    return control.status(resolve_state_dir(state_dir))


@contextmanager
def running(state_dir: str | Path | None = None, **kwargs: Any):
    """``with running(tmp_path) as st: ...`` - a sandbox that is always stopped after."""
    try:
        yield start(state_dir, **kwargs)
    finally:
        stop(state_dir)
