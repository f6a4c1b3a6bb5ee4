"""Locust as subprocesses: one local process, or a master and N workers on this machine.

Everything is validated before the first process starts. Each process writes its own
sample shards and orders into the run folder; the master (or the local process) writes
``live.json`` and Locust's CSV/HTML.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from peakready import runfolder
from peakready.errors import BadInput
from peakready.load.bundle import bundle_spec
from peakready.load.settings import (
    PLUGIN_FILE,
    LoadSettings,
    check_host,
    check_locustfile,
    master_address,
    resolve,
)

END_SHIP_S = 30.0  # peakready.load.coordination.END_SHIP_S (that module imports gevent)

PROFILE_CSV = "profile.csv"
SETTINGS_JSON = "settings.json"


@dataclass
class LoadHandle:
    """The running Locust processes of one run; ``main`` is the master or local process."""

    run_dir: Path
    main: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    grace_s: float = 10.0
    _finished: bool = False

    @property
    def live_status_path(self) -> Path:
        return self.run_dir / runfolder.LIVE_STATUS

    @property
    def pids(self) -> list[int]:
        return [self.main.pid, *(w.pid for w in self.workers)]

    def poll(self) -> int | None:
        return self.main.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code of the master/local process, or None if still running at timeout."""
        try:
            rc = self.main.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap_workers(self.grace_s)
        self._record_exit(rc)
        return rc

    def stop(self) -> int:
        """Graceful stop: on SIGINT Locust stops the users (the master tells its workers and
        waits for their last stats), the samples are flushed and the reports written;
        whatever is still alive after the grace period is killed. Not SIGTERM: while a
        headless shape test runs, Locust has not installed its SIGTERM handler yet, so
        SIGTERM kills it on the spot."""
        if self.main.poll() is None:
            self.main.send_signal(signal.SIGINT)
            try:
                self.main.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                self.main.kill()
                self.main.wait()
        self._reap_workers(self.grace_s)
        rc = self.main.returncode
        self._record_exit(rc)
        return rc

    def kill(self) -> None:
        """SIGKILL every process at once (what a crash looks like; tests use it)."""
        for proc in (self.main, *self.workers):
            if proc.poll() is None:
                proc.kill()
        for proc in (self.main, *self.workers):
            proc.wait()

    def _reap_workers(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for proc in self.workers:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _record_exit(self, rc: int) -> None:
        if self._finished:
            return
        self._finished = True
        live = read_live(self.run_dir)
        runfolder.update_run_json(self.run_dir, load={
            "exit_code": rc,
            "model": live.get("load_model") or runfolder.read_run_json(self.run_dir).get(
                "load_model"),
            "user_cap": live.get("user_cap"),
            "user_cap_hit": bool(live.get("user_cap_hit", False)),
            "max_users_seen": live.get("max_users_seen"),
            "pids": self.pids,
            **_distributed_record(self.run_dir),
        })


def _distributed_record(run_dir: Path) -> dict:
    """run.json's note of a distributed run: which worker was who, lost workers whose
    arrivals were taken over (offered vs achieved shows the gap in the samples)."""
    status = read_workers(run_dir)
    if not status:
        return {}
    return {"workers": {label: info.get("name") for label, info in
                        (status.get("assigned") or {}).items()},
            "takeovers": status.get("takeovers") or []}


def read_live(run_dir: Path | str) -> dict:
    return runfolder.read_json(Path(run_dir) / runfolder.LIVE_STATUS) or {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_load(settings: LoadSettings, run_dir: Path | str, check: bool = True) -> LoadHandle:
    """Validate, write the resolved settings into the run folder, start Locust; returns at
    once. Raises BadInput (and starts nothing) on a bad profile, setting, locustfile or
    host; ``check=False`` when the caller has checked the locustfile and host already."""
    run_dir = Path(run_dir).resolve()
    profile = resolve(settings)
    if check:
        check_locustfile(settings)
        check_host(settings.host)
    for sub in (runfolder.SAMPLES_DIR, runfolder.ORDERS_DIR, runfolder.LOCUST_DIR,
                runfolder.LOGS_DIR):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    profile.to_csv(run_dir / PROFILE_CSV)
    resolved = {**settings.to_json(), "profile_points": profile.points.to_dict("list"),
                "duration_s": profile.duration_s, "peak_rps": profile.peak_rps,
                "total_arrivals": round(profile.total_arrivals, 1)}
    runfolder.write_json_atomic(run_dir / SETTINGS_JSON, resolved)
    (run_dir / runfolder.PLAN_YAML).write_text(yaml.safe_dump({"load": settings.to_json()},
                                                               sort_keys=False))
    runfolder.update_run_json(run_dir, host=settings.host, load_settings=SETTINGS_JSON,
                              load_model=settings.load_model)

    # peakready's plugin first: its options, capture and scheduler exist whatever the file
    files = f"{PLUGIN_FILE},{Path(settings.locustfile).resolve()}"
    common = [sys.executable, "-m", "locust", "-f", files,
              "--traffic-profile", str(run_dir / PROFILE_CSV), "--run-dir", str(run_dir),
              *settings.locust_args(), *settings.extra_args]
    env = {**os.environ, **settings.extra_env, "PYTHONUNBUFFERED": "1"}
    logs = run_dir / runfolder.LOGS_DIR
    report = ["--headless", "--host", settings.host, "--only-summary",
              "--csv", str(run_dir / runfolder.LOCUST_DIR / "stats"), "--csv-full-history",
              "--html", str(run_dir / runfolder.LOCUST_DIR / "report.html"),
              "--exit-code-on-error", "0", "--stop-timeout", f"{settings.drain_s:g}"]
    if settings.workers == 1 and not settings.external_workers:
        main = _spawn([*common, *report, "--logfile", str(logs / "locust.log"),
                       *settings.user_classes], env, logs / "locust.out", run_dir)
        return LoadHandle(run_dir, main, grace_s=settings.grace_s)
    bind_host, port = master_address(settings)
    port = port or free_port()
    spec = bundle_spec(settings)
    runfolder.write_json_atomic(run_dir / runfolder.WORKER_BUNDLE, spec)
    # the master waits for its workers' last shards after the drain: a stop gets that long
    grace = settings.grace_s + settings.drain_s + END_SHIP_S
    wait_s = settings.worker_wait_s if settings.external_workers else 60
    main = _spawn([*common, *report, "--master", "--master-bind-host", bind_host,
                   "--master-bind-port", str(port), "--expect-workers", str(settings.workers),
                   "--expect-workers-max-wait", f"{wait_s + 30:g}",
                   "--worker-bundle", str(run_dir / runfolder.WORKER_BUNDLE),
                   "--drain-seconds", f"{settings.drain_s:g}",
                   "--logfile", str(logs / "locust-master.log"),
                   *settings.user_classes], env, logs / "locust-master.out", run_dir)
    runfolder.update_run_json(run_dir, master={"bind": f"{bind_host}:{port}",
                                               "workers": settings.workers,
                                               "external": settings.external_workers})
    if settings.external_workers:
        handle = LoadHandle(run_dir, main, grace_s=grace)
        wait_for_workers(handle, settings.workers, wait_s, f"{bind_host}:{port}")
        return handle
    master_host = "127.0.0.1" if bind_host in ("0.0.0.0", "*", "") else bind_host
    workers = [
        # each worker its own spool (as on another host): it ships what it writes
        _spawn([*common[:common.index("--run-dir")], *common[common.index("--run-dir") + 2:],
                "--run-dir", str(run_dir / runfolder.SPOOL_DIR / str(i)),
                "--worker", "--master-host", master_host, "--master-port", str(port),
                "--worker-name", f"local{i}",
                "--logfile", str(logs / f"locust-worker{i}.log"), *settings.user_classes],
               env, logs / f"locust-worker{i}.out", run_dir)
        for i in range(settings.workers)
    ]
    return LoadHandle(run_dir, main, workers, grace_s=grace)


def read_workers(run_dir: Path | str) -> dict:
    """The master's ``workers.json`` (connected workers, assignments, takeovers)."""
    return runfolder.read_json(Path(run_dir) / runfolder.WORKERS_STATUS) or {}


def wait_for_workers(handle: LoadHandle, count: int, wait_s: float, address: str) -> None:
    """Until the master has started the test with its ``count`` workers; after
    ``wait_s`` (or if the master dies) it is stopped and BadInput names what is missing:
    nothing was sent yet."""
    print(f"peakready: waiting up to {wait_s:g} s for {count} worker(s) at {address}: start "
          f"each with `peakready worker --master {address}`", file=sys.stderr, flush=True)
    deadline = time.monotonic() + wait_s
    status: dict = {}
    while time.monotonic() < deadline and handle.poll() is None:
        status = read_workers(handle.run_dir)
        if status.get("started"):
            return
        time.sleep(0.2)
    status = read_workers(handle.run_dir) or status
    if status.get("started"):
        return
    handle.kill()
    connected = [w.get("name") or w.get("client_id") for w in status.get("connected", [])
                 if w.get("state") != "missing"]
    runfolder.update_run_json(handle.run_dir, status="failed",
                              abort_reason=f"{count - len(connected)} worker(s) missing")
    died = "" if handle.main.returncode in (None, -9) else (
        f" (the master exited with {handle.main.returncode}: see logs/locust-master.log)")
    raise BadInput(
        f"load: waited {wait_s:g} s for {count} worker(s) at {address}: "
        f"{len(connected)} connected ({', '.join(connected) or 'none'}), "
        f"{count - len(connected)} missing: start them with "
        f"`peakready worker --master {address}`{died}")


def _spawn(cmd: list[str], env: dict[str, str], out: Path, cwd: Path) -> subprocess.Popen:
    with out.open("ab") as fh:
        # own session: a Ctrl-C in the terminal reaches peakready, which stops Locust cleanly
        # cwd: the run folder, so a locust.conf where peakready was started does not mix in
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def run_load(settings: LoadSettings, run_dir: Path | str, check: bool = True) -> int:
    """Blocking: validate, run the whole profile, finalise run.json. 0 when the load ran
    to the end, 1 when Locust failed, was interrupted, or overran its time."""
    run_dir = Path(run_dir)
    handle = start_load(settings, run_dir, check=check)
    profile_s = json.loads((run_dir / SETTINGS_JSON).read_text())["duration_s"]
    status = "completed"
    try:
        rc = handle.wait(timeout=profile_s + settings.drain_s + 90 + 5 * settings.workers)
        if rc is None:
            status = "failed"
            rc = handle.stop()
            runfolder.update_run_json(run_dir, abort_reason="load overran the profile by 90 s")
    except KeyboardInterrupt:
        status = "interrupted"
        rc = handle.stop()
    if status == "completed" and rc != 0:
        status = "failed"
    runfolder.update_run_json(run_dir, status=status, ended_at=time.time())
    return 0 if status == "completed" else 1


def load_into_new_folder(settings: LoadSettings, reports_dir: Path | str,
                         label: str = "load") -> tuple[int, Path]:
    """``peakready load``: validate everything first (no folder, no load on bad input),
    then create ``reports/<run-id>/`` and run the whole profile into it."""
    resolve(settings)
    check_locustfile(settings)
    check_host(settings.host)
    run_dir = runfolder.create(reports_dir, label=label)
    return run_load(settings, run_dir, check=False), run_dir  # checked above
