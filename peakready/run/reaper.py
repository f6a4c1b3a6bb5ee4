"""Stop a run's private sandbox when the run process dies without stopping it (SIGKILL,
OOM killer): the sandbox daemon lives in its own session and would otherwise run forever.

Started by ``start_sandbox`` in a session of its own (a signal to the run's process group
does not reach it); exits as soon as the run stopped the sandbox itself (state folder gone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spawn(run_pid: int, state_dir: Path) -> subprocess.Popen:
    """The watcher for ``state_dir``, bound to the process ``run_pid``."""
    return subprocess.Popen(
        [sys.executable, "-m", "peakready.run.reaper", "--pid", str(run_pid),
         "--state-dir", str(state_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd="/")


def watch(run_pid: int, state_dir: Path, poll_s: float = 0.5) -> bool:
    """Wait for the run to end; True when it died with its sandbox still there (stopped now)."""
    while _alive(run_pid):
        if not state_dir.exists():
            return False
        time.sleep(poll_s)
    if not state_dir.exists():
        return False
    from peakready import sandbox

    try:
        sandbox.stop(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peakready.run.reaper")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    watch(args.pid, args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
