"""Suite-wide guard: no process started by the tests may outlive them.

Every process a test starts inherits ``PEAKREADY_TEST_SESSION``; at the end of the
session any process still carrying it is reported (and then ended, by PID) so a leak
fails the run instead of piling up on the machine.
"""

from __future__ import annotations

import os
import uuid

import psutil
import pytest

SESSION_VAR = "PEAKREADY_TEST_SESSION"


def _leftovers(token: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(SESSION_VAR) == token:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    token = os.environ.setdefault(SESSION_VAR, uuid.uuid4().hex)
    yield
    left = [p for p in _leftovers(token) if p.is_running()]
    if not left:
        return
    described = []
    for proc in left:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except psutil.Error:
            pass
    pytest.fail("processes left behind by the tests (now killed): " + "; ".join(described))
