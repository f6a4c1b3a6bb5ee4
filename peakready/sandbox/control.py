"""Client side of the sandbox daemon: spawn it, wait for it, read its status, stop it.

The daemon publishes ``status.json`` in the state folder (atomically, every second);
``daemon.pid`` names it. Nothing else is shared, so any process can drive a sandbox it
did not start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from peakready.errors import BadInput, PeakreadyError
from peakready.sandbox import procs

STATUS_FILE = "status.json"
PID_FILE = "daemon.pid"
PGDATA_POINTER = "pgdata.path"


class SandboxError(PeakreadyError):
    """The sandbox could not be started (a component failed); see its logs."""


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def daemon_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def status(state_dir: Path) -> dict:
    pid = daemon_pid(state_dir)
    data = _read_json(state_dir / STATUS_FILE)
    if pid is None or not procs.pid_alive(pid):
        out: dict[str, Any] = {"state": "stopped", "state_dir": str(state_dir)}
        if data and data.get("state") == "failed":
            out.update(state="failed", error=data.get("error"))
        return out
    if data is None:
        return {"state": "starting", "state_dir": str(state_dir), "pid": pid}
    return data


def _validate(instances: int, lb_port: int, storefront: dict | None,
              search: dict | None = None) -> None:
    if not isinstance(instances, int) or not 0 <= instances <= 20:
        raise BadInput(f"instances must be an integer 0..20, got {instances!r}")
    if not isinstance(lb_port, int) or not 0 <= lb_port <= 65535:
        raise BadInput(f"lb_port must be 0..65535, got {lb_port!r}")
    if storefront is not None:
        from peakready.sandbox.storefront import config

        try:
            config.from_dict(storefront)
        except (ValueError, TypeError) as exc:
            raise BadInput(str(exc)) from exc
    if search is not None:
        from peakready.sandbox.search import config as search_config

        try:
            search_config.from_dict(search)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc


def start(state_dir: Path, instances: int = 2, lb_port: int = 0, timing: Any = None,
          storefront: dict | None = None, timeout: float = 90.0,
          search: dict | None = None) -> dict:
    _validate(instances, lb_port, storefront, search)
    current = status(state_dir)
    if current["state"] in ("running", "starting"):
        return {**current, "already_running": True}
    if state_dir.exists() and any(state_dir.iterdir()):
        if not _is_sandbox_dir(state_dir):
            raise BadInput(f"state folder {state_dir} exists and is not a sandbox's: "
                           "choose an empty or new folder")
        _remove_state(state_dir)  # a dead sandbox's leftovers
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "peakready.sandbox.daemon", "--state-dir", str(state_dir),
           "--instances", str(instances), "--lb-port", str(lb_port)]
    if timing is not None:
        cmd += ["--timing", json.dumps(asdict(timing) if is_dataclass(timing) else dict(timing))]
    if storefront:
        cmd += ["--storefront", json.dumps(storefront)]
    if search:
        cmd += ["--search", json.dumps(search)]
    with open(state_dir / "logs" / "daemon.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
    try:
        return _wait_running(state_dir, proc, timeout)
    except BaseException:  # a failure, a timeout or Ctrl-C: leave nothing half-started
        stop(state_dir, keep_logs=True)  # the error message points at the logs
        if proc.poll() is None:  # it had not written daemon.pid yet (a slow, loaded start)
            proc.kill()  # its children die with it (PDEATHSIG)
            proc.wait()
        raise


def _wait_running(state_dir: Path, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = _read_json(state_dir / STATUS_FILE) or {}
        if data.get("state") == "running":
            return data
        if data.get("state") == "failed" or proc.poll() is not None:
            error = data.get("error") or f"daemon exited with {proc.poll()}"
            raise SandboxError(f"sandbox failed to start: {error} "
                               f"(logs in {state_dir / 'logs'})")
        time.sleep(0.1)
    raise SandboxError(f"sandbox not ready after {timeout:.0f} s (logs in {state_dir / 'logs'})")


def stop(state_dir: Path, timeout: float = 30.0, keep_logs: bool = False) -> bool:
    pid = daemon_pid(state_dir)
    was_running = pid is not None and procs.pid_alive(pid)
    if was_running:
        assert pid is not None
        last = _read_json(state_dir / STATUS_FILE) or {}
        os.kill(pid, signal.SIGTERM)
        if not procs.wait_until(lambda: not procs.pid_alive(pid), timeout, 0.05):
            os.kill(pid, signal.SIGKILL)  # its children die with it (PDEATHSIG)
            procs.wait_until(lambda: not procs.pid_alive(pid), 5, 0.05)
            _kill_components(last)
    _remove_state(state_dir, keep_logs)
    return was_running


def _kill_components(last_status: dict) -> None:
    """Safety net after a daemon had to be SIGKILLed: end the children it listed, by PID,
    when they still look like ours."""
    import psutil

    for comp in last_status.get("components", []):
        pid = comp.get("pid")
        if not pid:
            continue
        try:
            proc = psutil.Process(pid)
            cmd = " ".join(proc.cmdline())
            if "peakready.sandbox" in cmd or "postgres" in cmd or "redis-server" in cmd:
                proc.kill()
        except psutil.Error:
            continue


def _is_sandbox_dir(state_dir: Path) -> bool:
    return any((state_dir / name).exists() for name in (PID_FILE, STATUS_FILE, "logs"))


def _remove_state(state_dir: Path, keep_logs: bool = False) -> None:
    """Remove the state folder, only when it is one (never a user's folder by mistake);
    with ``keep_logs``, everything but ``logs/``."""
    if not state_dir.exists() or not _is_sandbox_dir(state_dir):
        return
    pointer = state_dir / PGDATA_POINTER
    if pointer.exists():
        pg_dir = Path(pointer.read_text().strip())
        if pg_dir.name.startswith("peakready-pg-"):
            shutil.rmtree(pg_dir, ignore_errors=True)
    if not keep_logs:
        shutil.rmtree(state_dir, ignore_errors=True)
        return
    for path in state_dir.iterdir():
        if path.name == "logs":
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
