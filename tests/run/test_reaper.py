"""A `peakready run` killed with SIGKILL must not leave its private sandbox running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

CHILD = """
import sys, time
from peakready.run.target import start_sandbox
target = start_sandbox({})
print(target.state_dir, flush=True)
time.sleep(300)
"""


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def test_sandbox_of_a_sigkilled_run_is_stopped(run_tmp):
    env = {**os.environ, "TMPDIR": str(run_tmp)}
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        state_dir = Path(child.stdout.readline().strip())
        daemon = int((state_dir / "daemon.pid").read_text())
        assert psutil.pid_exists(daemon)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert _wait(lambda: not psutil.pid_exists(daemon) and not state_dir.exists(), 40), \
            "the sandbox daemon outlived the run that started it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
