"""The running part of a run: launch each fault at its offset, watch the stop conditions,
refresh the live view; then wind down so every rollback runs and no process is left.

All state is in ``RunState``; the loop reads ``live.json`` and the AWS API, and writes
nothing but the state and the view.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakready import runfolder
from peakready.chaos.spec import FaultSpec
from peakready.collect import FaultRecord
from peakready.run import schedule as sched
from peakready.run import stop as stops
from peakready.run.target import Target
from peakready.run.view import LiveView, snapshot_from_live

TICK_S = 0.5
LIVE_STALE_S = 5.0
CLOCK_WAIT_S = 15.0  # longest wait for the load's first live.json before faults go anyway


@dataclass
class RunningFault:
    fault: sched.ScheduledFault
    process: Any  # peakready.chaos.runner.ExperimentProcess
    launched_at: float
    ended_at: float | None = None

    def record(self) -> FaultRecord:
        return FaultRecord(self.fault.name, self.fault.experiment, str(self.process.journal_path),
                           self.launched_at, self.ended_at, self.process.returncode,
                           bool(getattr(self.process, "interrupted", False)))


@dataclass
class RunState:
    run_dir: Path
    load_started_at: float
    anchor: float | None = None  # load time zero as live.json reports it
    faults: dict[str, RunningFault] = field(default_factory=dict)
    stop_reason: str | None = None
    stopped_at: float | None = None  # when the stop condition fired / Ctrl-C came
    status: str = "running"
    signals: int = 0
    extra_events: list[dict] = field(default_factory=list)
    in_service: int | None = None
    desired: int | None = None

    def elapsed(self, now: float) -> float:
        return now - (self.anchor if self.anchor is not None else self.load_started_at)


def _experiment_env(spec: dict[str, Any], target: Target, run_dir: Path) -> dict[str, str]:
    env = dict(target.aws_env)
    env["PEAKREADY_LIVE_STATUS"] = str((run_dir / runfolder.LIVE_STATUS).resolve())
    env["PEAKREADY_RUN_DIR"] = str(run_dir.resolve())
    # a fault's saved "before" (Web ACL, quota tags, bucket policy) stays with its run
    env["PEAKREADY_CHAOS_STATE_DIR"] = str((run_dir / runfolder.CHAOS_STATE_DIR).resolve())
    return env


def _launch(fault: sched.ScheduledFault, state: RunState, spec: dict[str, Any],
            target: Target) -> RunningFault:
    """``chaos run`` on the experiment file the plan found when it loaded (``fault.path``),
    with the plan's configuration; the file is not looked up or read here."""
    from peakready.chaos.runner import start_experiment

    run_dir = state.run_dir
    experiment = fault.path or Path(fault.experiment)
    configuration = {"live_status": str((run_dir / runfolder.LIVE_STATUS).resolve()),
                     "aws_region": target.region, **fault.configuration}
    process = start_experiment(
        experiment,
        run_dir / runfolder.CHAOS_DIR / f"{fault.file_stem}.journal.json",
        run_dir / runfolder.LOGS_DIR / f"chaos-{fault.file_stem}.log",
        configuration,
        _experiment_env(spec, target, run_dir),
    )
    return RunningFault(fault, process, time.time())


def _poll_asg(target: Target, state: RunState) -> None:
    group = target.resources.get("autoscaling_group")
    if not group:
        return
    try:
        found = target.clients("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[group])["AutoScalingGroups"]
    except Exception:  # noqa: BLE001 - the view is best effort
        return
    if found:
        g = found[0]
        state.desired = int(g.get("DesiredCapacity", 0))
        state.in_service = sum(1 for i in g.get("Instances", [])
                               if i.get("LifecycleState") == "InService"
                               and i.get("HealthStatus") == "Healthy")


def run_loop(spec: dict[str, Any], faults: Sequence[FaultSpec], target: Target,
             state: RunState, load: Any, view: LiveView, expected_s: float | None) -> None:
    """Until the load ends or a stop condition/Ctrl-C: launch due ``faults`` (the plan's
    fault specs), watch guards, refresh the view. Returns with ``state.stop_reason``/
    ``state.status`` set."""
    schedule = sched.from_specs(faults)
    stop_cfg = spec.get("stop_conditions") or {}
    err_cfg = stop_cfg.get("error_rate") or {}
    guard = (stops.ErrorRateGuard(float(err_cfg["max"]), float(err_cfg.get("for_s", 0)))
             if err_cfg.get("max") is not None else None)
    alarm_names = list(stop_cfg.get("alarms") or [])
    phases = spec.get("phases") or []
    live_path = state.run_dir / runfolder.LIVE_STATUS
    next_alarm_check = next_asg_poll = 0.0
    hard_deadline = time.time() + (expected_s or 3600) + 120  # every loop is bounded

    while True:
        now = time.time()
        if state.signals:
            state.status, state.stop_reason = "interrupted", "interrupted (Ctrl-C)"
            state.stopped_at = now
            return
        live = runfolder.read_json(live_path)
        fresh = live is not None and now - float(live.get("ts") or 0) <= LIVE_STALE_S
        if fresh and state.anchor is None and live.get("elapsed_s") is not None:
            state.anchor = float(live["ts"]) - float(live["elapsed_s"])
        elapsed = state.elapsed(now)

        # stop conditions
        reason = guard.feed(live) if (guard and fresh) else None
        if reason is None and alarm_names and now >= next_alarm_check:
            next_alarm_check = now + 5.0
            try:
                firing = stops.alarms_in_alarm(target.clients("cloudwatch").describe_alarms,
                                               alarm_names)
            except Exception as exc:  # noqa: BLE001
                view.say(f"stop condition alarms unreadable: {exc}")
                firing = []
            if firing:
                reason = stops.alarm_reason(firing)
        if reason:
            state.status, state.stop_reason, state.stopped_at = "aborted", reason, now
            view.say(f"ABORT: {reason}")
            return

        # faults: offsets count from the load's time zero, known once live.json appears
        # (a fault landing before it would fail its steady state on a missing live status)
        clock_known = state.anchor is not None or now - state.load_started_at > CLOCK_WAIT_S
        for fault in sched.due(schedule, set(state.faults), elapsed) if clock_known else []:
            try:
                state.faults[fault.name] = _launch(fault, state, spec, target)
                view.say(f"fault {fault.name} started at t={elapsed:.0f}s ({fault.experiment})")
            except Exception as exc:  # noqa: BLE001
                view.say(f"fault {fault.name} could not start: {exc}")
                state.status, state.stop_reason = "failed", f"fault {fault.name} could not start: {exc}"
                return
        for running in state.faults.values():
            if running.ended_at is None and running.process.poll() is not None:
                running.ended_at = time.time()
                view.say(_fault_ended_line(running))

        # load
        if load.poll() is not None:
            return
        if now > hard_deadline:
            state.status, state.stop_reason = "failed", "the load did not end in time"
            view.say("the load ran past its expected duration; stopping it")
            return

        if now >= next_asg_poll:
            next_asg_poll = now + 2.0
            _poll_asg(target, state)
        view.update(snapshot_from_live(
            live if fresh else None, elapsed_s=elapsed, duration_s=expected_s,
            phase=sched.phase_at(phases, elapsed), in_service=state.in_service,
            desired=state.desired,
            running_faults=[n for n, r in state.faults.items() if r.ended_at is None],
            next_fault=sched.next_fault(schedule, set(state.faults), elapsed),
            guard=(f"error rate over bound for {guard.held_s(now):.0f}/{guard.for_s:.0f} s"
                   if guard and guard.breach_since else ""),
        ))
        time.sleep(TICK_S)


def _fault_ended_line(running: RunningFault) -> str:
    from peakready.chaos.journal import read_outcome

    outcome = read_outcome(running.process.journal_path)
    verdict = "held" if outcome.ok else "NOT OK"
    return f"fault {running.fault.name} ended ({outcome.status}): {verdict}: {outcome.reason}"


def wind_down(state: RunState, load: Any, view: LiveView, grace_s: float,
              natural_end_wait_s: float = 10.0) -> None:
    """Interrupt every running fault (rollbacks run), stop the load, wait for rollbacks."""
    running = [r for r in state.faults.values() if r.ended_at is None]
    if running and state.status == "running":
        # the load ended first: give the experiments a moment to finish by themselves
        deadline = time.time() + natural_end_wait_s
        while time.time() < deadline and any(r.process.poll() is None for r in running):
            time.sleep(TICK_S)
    for r in running:
        if r.process.poll() is None:
            view.say(f"interrupting fault {r.fault.name}: its rollbacks run now")
            r.process.interrupt()
    if load.poll() is None:
        view.say("stopping the load")
        load.stop()
    else:
        load.wait(30)  # reap the workers, record the load's exit in run.json
    for r in running:
        if r.process.wait(grace_s) is None:
            view.say(f"fault {r.fault.name} did not end {grace_s:.0f} s after the interrupt: killed")
            r.process.kill()
        if r.ended_at is None:
            r.ended_at = time.time()
            view.say(_fault_ended_line(r))


def kill_leftovers(state: RunState, load: Any) -> None:
    """Last resort (a forced third Ctrl-C during wind-down): no process of ours outlives
    the run, even if a rollback could not finish."""
    for r in state.faults.values():
        if r.process.poll() is None:
            r.process.kill()
    if load.poll() is None:
        load.kill()
