"""A `peakready run` killed with SIGKILL must not leave its private sandbox running, nor
its other children (Locust, chaos) going on against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.spawns  # a run with its own sandbox, then SIGKILL

CHILD = """
import subprocess, sys, time
from peakready.run.target import start_sandbox
target = start_sandbox({})
load = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(target.state_dir, load.pid, flush=True)
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
    # the run's sandbox boots fast (PEAKREADY_TIMING): what is tested is its end
    env = {**os.environ, "TMPDIR": str(run_tmp),
           "PEAKREADY_TIMING": json.dumps({"boot_delay_s": 0.5, "health_interval_s": 0.25})}
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        state, load = child.stdout.readline().split()
        state_dir, load = Path(state), psutil.Process(int(load))
        daemon = int((state_dir / "daemon.pid").read_text())
        assert psutil.pid_exists(daemon)
        time.sleep(3.0)  # the watcher (a fresh interpreter) has seen the run's children
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        # bounded by the reaper's own limits (children's grace, then the daemon's 30 + 5 s
        # stop): on a CPU-starved machine the daemon's orderly stop alone can take 30 s
        assert _wait(lambda: not psutil.pid_exists(daemon) and not state_dir.exists(), 100), \
            "the sandbox daemon outlived the run that started it"
        assert _wait(lambda: not load.is_running() or load.status() == psutil.STATUS_ZOMBIE, 5), \
            "the run's load process went on after the run was killed"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
