"""One experiment as a ``chaos run`` subprocess that can be stopped with its rollbacks.

Each experiment gets its own process because ``run_experiment`` must own a main thread
(signal handlers), and its own session so a Ctrl-C in the terminal does not reach it
directly: a second signal during rollbacks makes Chaos Toolkit skip the remaining ones,
so the orchestrator alone decides when to send the one SIGINT (``interrupt``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ExperimentProcess", "chaos_command", "start_experiment"]


def chaos_executable() -> str:
    """The ``chaos`` script of this interpreter's environment (the venv), else PATH's."""
    here = Path(sys.executable).with_name("chaos")
    return str(here) if here.exists() else "chaos"


def chaos_command(
    experiment_path: str | Path,
    journal_path: str | Path,
    log_path: str | Path,
    var_file: str | Path | None = None,
    hypothesis_strategy: str = "continuously",
    hypothesis_frequency_s: float = 5.0,
    fail_fast: bool = False,
) -> list[str]:
    """The argv of one ``chaos run``; rollbacks always run, whatever happens."""
    argv = [chaos_executable(), "--no-version-check", "--log-file", str(log_path), "run",
            "--journal-path", str(journal_path), "--rollback-strategy", "always",
            "--hypothesis-strategy", hypothesis_strategy]
    if hypothesis_strategy in ("continuously", "during-method-only"):
        argv += ["--hypothesis-frequency", str(float(hypothesis_frequency_s))]
    if fail_fast:
        argv.append("--fail-fast")
    if var_file is not None:
        argv += ["--var-file", str(var_file)]
    return argv + [str(experiment_path)]


class ExperimentProcess:
    """A running ``chaos run``. ``returncode`` is None while it runs.

    The exit code of ``chaos run`` is not the outcome: read the journal with
    ``peakready.chaos.journal.read_outcome``.
    """

    def __init__(self, popen: subprocess.Popen, journal_path: Path, log_path: Path,
                 argv: Sequence[str]):
        self._popen = popen
        self.journal_path = journal_path
        self.log_path = log_path
        self.argv = list(argv)
        self.interrupted = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def interrupt(self) -> None:
        """Ask the experiment to stop now: one SIGINT to its process group, as a Ctrl-C
        in a terminal would send (process-provider children stop too); the method ends and
        the rollbacks run (``--rollback-strategy always``). Sent once: a second signal
        would cut the rollbacks short."""
        if self.interrupted or self._popen.poll() is not None:
            return
        self.interrupted = True
        try:
            os.killpg(self._popen.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Last resort when ``interrupt`` did not end it in time; rollbacks may not run.
        Kills the whole process group, so no provider child outlives it."""
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._popen.wait()

    def stop(self, grace_s: float = 60.0) -> int:
        """Interrupt, wait up to ``grace_s`` for rollbacks, then kill."""
        self.interrupt()
        if self.wait(grace_s) is None:
            self.kill()
        return self._popen.returncode


def start_experiment(
    experiment_path: str | Path,
    journal_path: str | Path,
    log_path: str | Path,
    configuration: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    hypothesis_strategy: str = "continuously",
    hypothesis_frequency_s: float = 5.0,
    fail_fast: bool = False,
    cwd: str | Path | None = None,
) -> ExperimentProcess:
    """Start ``chaos run`` on one experiment and return at once.

    ``configuration`` overrides the experiment's configuration variables (typed, through
    a ``--var-file`` written beside the journal). ``env`` is added to this process's
    environment (e.g. ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``PEAKREADY_LIVE_STATUS``).
    stdout/stderr go to ``log_path`` with ``.out`` appended; Chaos Toolkit's own log to
    ``log_path``.
    """
    journal_path, log_path = Path(journal_path), Path(log_path)
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    var_file = None
    if configuration:
        stem = journal_path.name.removesuffix(".json").removesuffix(".journal")
        var_file = journal_path.with_name(stem + ".vars.json")
        var_file.write_text(json.dumps({"configuration": dict(configuration)}, indent=2,
                                       default=str))
    argv = chaos_command(Path(experiment_path).resolve(), journal_path.resolve(),
                         log_path.resolve(), var_file.resolve() if var_file else None,
                         hypothesis_strategy, hypothesis_frequency_s, fail_fast)
    full_env = {**os.environ, **(env or {})}
    out = open(log_path.with_name(log_path.name + ".out"), "ab")  # noqa: SIM115
    try:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                 start_new_session=True)
    finally:
        out.close()
    return ExperimentProcess(popen, journal_path, log_path, argv)
