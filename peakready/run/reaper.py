"""Stop what a run started when the run process dies without stopping it (SIGKILL, OOM
killer): the sandbox daemon lives in its own session and would otherwise run forever, and
Locust would go on sending load at a stopped sandbox (samples that only show the teardown).

The run's other children (Locust, ``chaos run``) get one SIGINT first, as the run itself
would send: Locust flushes its samples, the experiments run their rollbacks while the
sandbox is still up; then the sandbox is stopped. Started by ``start_sandbox`` in a
session of its own (a signal to the run's process group does not reach it); exits as soon
as the run stopped the sandbox itself (state folder gone).

With ``--cleanup FILE`` it guards AWS resources a run created for itself instead (the
temporary SQS queue and subscriptions that observe pages, ``peakready.paging.sqs``): if
the run dies while FILE still exists, they are deleted with the run's own credentials
(inherited environment; FILE holds only names).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

GRACE_S = 60.0  # as the run's own wind-down: time for rollbacks and the last samples
OWN = ("peakready.sandbox.daemon", "peakready.run.reaper")


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


def _children(run_pid: int) -> list[psutil.Process]:
    """The run's load and chaos processes (not the sandbox daemon, not us)."""
    try:
        kids = psutil.Process(run_pid).children()
    except psutil.Error:
        return []
    out = []
    for kid in kids:
        try:
            if not any(own in " ".join(kid.cmdline()) for own in OWN):
                out.append(kid)
        except psutil.Error:
            continue
    return out


def _interrupt(procs: list[psutil.Process], grace_s: float) -> None:
    """One SIGINT each (to its process group when it leads one, like ``chaos run``),
    then SIGKILL what is still there after ``grace_s``."""
    for proc in procs:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(signal.SIGINT)
        except (OSError, psutil.Error):
            continue
    _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue


def watch(run_pid: int, state_dir: Path, poll_s: float = 0.5, grace_s: float = GRACE_S) -> bool:
    """Wait for the run to end; True when it died with its sandbox still there (its load
    and chaos processes interrupted and the sandbox stopped now)."""
    children: list[psutil.Process] = []
    while _alive(run_pid):
        if not state_dir.exists():
            return False
        children = _children(run_pid) or children
        time.sleep(poll_s)
    if not state_dir.exists():
        return False
    _interrupt([c for c in children if c.is_running()], grace_s)
    from peakready import sandbox

    try:
        sandbox.stop(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return True


def spawn_cleanup(run_pid: int, cleanup_file: Path, env: dict[str, str]) -> subprocess.Popen:
    """The watcher for the AWS resources listed in ``cleanup_file``."""
    return subprocess.Popen(
        [sys.executable, "-m", "peakready.run.reaper", "--pid", str(run_pid),
         "--cleanup", str(cleanup_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd="/", env=env)


def watch_cleanup(run_pid: int, cleanup_file: Path, poll_s: float = 0.5) -> bool:
    """Wait for the run to end; True when it died leaving ``cleanup_file`` (its resources
    are deleted now). The run removes the file itself once it has cleaned up."""
    while _alive(run_pid):
        if not cleanup_file.exists():
            return False
        time.sleep(poll_s)
    if not cleanup_file.exists():
        return False
    import boto3

    from peakready.paging import sqs as paging_sqs

    res = paging_sqs.QueueResources.load(cleanup_file)
    session = boto3.Session(region_name=res.region)
    problems = paging_sqs.delete(session.client("sqs"), session.client("sns"), res)
    if not problems:
        cleanup_file.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peakready.run.reaper")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--cleanup", type=Path)
    args = parser.parse_args(argv)
    if args.cleanup is not None:
        watch_cleanup(args.pid, args.cleanup)
    elif args.state_dir is not None:
        watch(args.pid, args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
