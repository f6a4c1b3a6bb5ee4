"""``peakready run``: validate, start the target, run load and faults with stop
conditions and a live view, then verify orders, collect, stop the target and analyse.

Order matters and is the contract with the user: nothing (no load, no fault) starts
before every check passed; whatever happens afterwards (abort, Ctrl-C, a crash), the
faults are interrupted so their rollbacks run, the load is stopped, the sandbox is
stopped, and the run folder keeps what was measured.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from peakready import runfolder
from peakready.awslag import AWS_SETTLE_S
from peakready.collect import AwsClients, collect_run
from peakready.collect.events import event
from peakready.errors import EXIT_ABORTED, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, BadInput
from peakready.run import schedule as sched
from peakready.run import stop as stops
from peakready.run.loop import RunningFault, RunState, kill_leftovers, run_loop, wind_down
from peakready.run.target import Target, open_aws, start_sandbox
from peakready.run.view import LiveView
from peakready.sandbox.aws.names import REGION


@dataclass
class RunOptions:
    plan_path: Path
    target: str | None = None  # overrides the plan's target.kind
    dry_run: bool = False
    baseline: Path | None = None
    reports_dir: Path = runfolder.DEFAULT_REPORTS_DIR
    settle_s: float | None = None  # wait before collecting (CloudWatch lag); None: by target
    fault_grace_s: float = 60.0  # rollbacks may take this long after an interrupt
    plain: bool = False  # plain lines even on a terminal
    out: IO[str] | None = None
    analyze: bool = True


# --- validation -------------------------------------------------------------------------

def load_spec(opts: RunOptions) -> tuple[Any, dict[str, Any]]:
    """Plan object and its resolved dict, with the ``--target`` override applied."""
    from peakready.plan import load_plan

    plan = load_plan(opts.plan_path)
    if opts.target and opts.target != plan.kind:
        plan = plan.with_target(opts.target)
    return plan, plan.resolved()


def validate_before_start(plan: Any, spec: dict[str, Any]) -> list[str]:
    """What can be checked without the target: load settings and profile (the host is
    only known once the target runs, so a placeholder stands in for it here), every
    resource a fault acts on named by the plan (``Plan.unnamed_resources``, the same rule
    the preflight applies again) and every experiment (``chaos validate``; preflight
    reuses the result)."""
    from peakready.chaos import safety
    from peakready.load import resolve as resolve_load
    from peakready.load.settings import check_locustfile

    settings = _load_settings(spec, "http://127.0.0.1:9")
    resolve_load(settings)
    check_locustfile(settings)  # imports it with Locust: a broken file is exit 2 here
    unnamed = plan.unnamed_resources()
    if unnamed:
        raise BadInput(f"{plan.path}: {unnamed[0]}")
    return safety.validate_experiments(plan)


def preflight(plan: Any, spec: dict[str, Any], target: Target) -> list[str]:
    """Safety rails against the live account (allow-list, account id, resources) and the
    stop-condition alarms; raises BadInput before anything is injected."""
    from peakready.chaos import safety

    notes = safety.preflight(plan, target.aws_env) or []
    if target.kind == "aws":
        from peakready.paging import observer as pages

        notes = list(notes) + pages.preflight(spec["target"], target.clients, target.region)
    alarm_names = list(((spec.get("stop_conditions") or {}).get("alarms")) or [])
    if alarm_names:
        describe = target.clients("cloudwatch").describe_alarms
        missing = stops.missing_alarms(describe, alarm_names)
        if missing:
            raise BadInput(f"plan: stop_conditions.alarms: no such alarm: {', '.join(missing)}")
        firing = stops.alarms_in_alarm(describe, alarm_names)
        if firing:
            raise BadInput(f"plan: stop_conditions.alarms: {firing[0]['AlarmName']} is already "
                           "in ALARM; not starting a run that would abort at once")
    return list(notes) if isinstance(notes, list) else []


def apply_web_acl(plan: Any, spec: dict[str, Any], target: Target, view: LiveView) -> None:
    """The plan's ``target.web_acl`` file on the sandbox ALB (``update_web_acl`` through
    its AWS endpoint), live on the balancer before any load. On AWS the account's own Web
    ACL is what the run tests: peakready does not rewrite a production WAF."""
    path = (spec.get("target") or {}).get("web_acl")
    if not path:
        return
    if target.kind != "sandbox":
        view.say("target.web_acl: applied on the sandbox only; this run tests the account's "
                 "Web ACL as it is")
        return
    from peakready import sandbox
    from peakready.plan import _bases, _find
    from peakready.waf import apply

    found = _find(path, _bases(plan.path)) or Path(path)
    lb = target.resources.get("load_balancer") or "peakready-alb"
    applied = apply.apply_file(target.clients("wafv2"), target.clients("elbv2"), found, lb)
    state_dir = target.state_dir
    live = apply.wait_live(applied["lock_token"], lambda: (
        sandbox.status(state_dir).get("control_plane") or {}).get("waf") or {})
    if not live:
        raise BadInput(f"plan: target.web_acl: {found} was not put on the balancer within "
                       "15 s (see the sandbox log: AWS would refuse it?)")
    target.web_acl = applied
    view.say(f"web ACL {applied['name']}: rules of {found.name} live on the balancer "
             f"({len(applied['rules'])} rules)")


# --- the loop ---------------------------------------------------------------------------------

def _load_settings(spec: dict[str, Any], host: str) -> Any:
    from dataclasses import fields as dc_fields

    from peakready.load import LoadSettings

    load = dict(spec.get("load") or {})
    wanted = {
        "host": host,
        "profile": load.get("profile"),
        "profile_path": load.get("profile"),
        "scale": load.get("scale", 1.0),
        "speed": load.get("speed", 1.0),
        "duration_s": load.get("duration_s"),
        "locustfile": load.get("locustfile"),
        "user_classes": load.get("user_classes") or [],
        "workers": load.get("workers", 1),
        "max_users": load.get("max_users"),
        "closed_model": load.get("closed_model"),
        "users": load.get("users"),
        "order_request": (load.get("orders") or {}).get("request"),
        "order_field": (load.get("orders") or {}).get("field"),
        "master_bind": (load.get("master") or {}).get("bind") or None,
        "external_workers": (load.get("master") or {}).get("external_workers"),
        "worker_wait_s": (load.get("master") or {}).get("wait_s"),
    }
    if load.get("attacks") or load.get("tricky_shoppers"):  # the WAF mix (docs/waf.md)
        from peakready.waf import loadmix

        wanted["extra_env"] = {loadmix.ENV: loadmix.env_value(
            load.get("attacks"), load.get("clients") or dict(loadmix.DEFAULT_CLIENTS),
            float(load.get("tricky_shoppers") or 0.0))}
    names = {f.name for f in dc_fields(LoadSettings)}
    return LoadSettings(**{k: v for k, v in wanted.items() if k in names and v is not None})


def phase_events(phases: list[dict[str, Any]], anchor: float, end: float) -> list[dict]:
    """The plan phases that actually ran, in wall-clock time (cut at the run's end)."""
    rows = []
    for p in phases:
        start = anchor + float(p.get("start_s", 0))
        if start >= end:
            continue
        stop = min(anchor + float(p.get("end_s", end - anchor)), end)
        rows.append(event(start, "peakready", "phase", str(p.get("name")), start=start, end=stop))
    return rows


# --- the whole command ----------------------------------------------------------------------

class _Signals:
    """Ctrl-C and SIGTERM set a flag the loop reads; the third one forces an exit."""

    def __init__(self, state_ref: Callable[[], RunState | None], view: LiveView) -> None:
        self._state_ref, self._view = state_ref, view
        self._count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @property
    def count(self) -> int:
        return self._count

    def _handle(self, signum: int, frame: Any) -> None:
        self._count += 1
        state = self._state_ref()
        if state is not None:
            state.signals = self._count
        if self._count == 1:
            self._view.say("interrupt: stopping faults (rollbacks run) and the load; "
                           "the data is kept")
        elif self._count >= 3:
            raise KeyboardInterrupt


def execute(opts: RunOptions) -> int:
    """The whole run; returns the exit code (0, 1, 2 via BadInput, 3 aborted, 130)."""
    plan, spec = load_spec(opts)
    view = LiveView(file=opts.out, force_plain=opts.plain)
    if opts.dry_run:
        return dry_run(plan, spec, view)

    validate_before_start(plan, spec)
    kind = spec["target"].get("kind", "sandbox")
    state_box: list[RunState | None] = [None]
    with _Signals(lambda: state_box[0], view) as signals:
        view.say(f"plan {spec.get('name', opts.plan_path)}: target {kind}")
        if kind == "sandbox":
            view.say("starting the sandbox")
            target = start_sandbox(spec["target"])
        else:
            target = open_aws(spec["target"])
        try:
            for note in [*target.notes, *preflight(plan, spec, target)]:
                view.say(f"preflight: {note}")
            apply_web_acl(plan, spec, target, view)
            if signals.count:
                view.say("interrupted before the load started: nothing was injected")
                return EXIT_INTERRUPTED
            return _run(opts, plan, spec, target, view, state_box, signals)
        finally:
            target.stop()


def _run(opts: RunOptions, plan: Any, spec: dict[str, Any], target: Target, view: LiveView,
         state_box: list, signals: _Signals) -> int:
    from peakready.load import check_host, start_load
    from peakready.load import resolve as resolve_load

    settings = _load_settings(spec, target.storefront_url)
    expected = float(resolve_load(settings).duration_s)
    check_host(target.storefront_url)  # an unreachable storefront: exit 2, no run folder
    resolved = json.loads(json.dumps(spec, default=str))
    resolved.setdefault("target", {})["storefront_url"] = target.storefront_url
    run_dir = runfolder.create(opts.reports_dir, label=str(spec.get("name") or "run"))
    runfolder.update_run_json(run_dir, target=target.describe(), plan=str(opts.plan_path),
                              command="run")
    view.say(f"run folder {run_dir}")
    from peakready.paging import observer as pages

    target.observer, notes = pages.for_run(spec, target, run_dir)  # before any load
    for note in notes:
        view.say(note)

    try:
        load = start_load(settings, run_dir, check=False)  # locustfile and host checked above
    except BaseException as exc:
        runfolder.update_run_json(run_dir, status="failed", ended_at=time.time(),
                                  abort_reason=f"the load did not start: {exc}")
        raise
    # after start_load, which writes its own load-only plan.yaml: the whole resolved plan
    (run_dir / runfolder.PLAN_YAML).write_text(yaml.safe_dump(resolved, sort_keys=False))
    state = RunState(run_dir=run_dir, load_started_at=time.time(), signals=signals.count)
    state_box[0] = state
    runfolder.update_run_json(run_dir, load_started_at=state.load_started_at)
    try:
        with view:
            run_loop(spec, plan.fault_specs, target, state, load, view, expected)
    except Exception as exc:  # noqa: BLE001 - stop everything, keep and analyse the data
        state.status, state.stop_reason = "failed", f"run loop failed: {type(exc).__name__}: {exc}"
        state.stopped_at = time.time()
        view.say(state.stop_reason)
    finally:
        try:
            wind_down(state, load, view, opts.fault_grace_s)
        finally:
            kill_leftovers(state, load)  # only does anything if wind-down was cut short
    if state.status == "running":
        state.status = "completed"
    if state.status == "completed" and load.poll() not in (0, None):
        state.status, state.stop_reason = "failed", f"the load ended with exit code {load.poll()}"
    ended = time.time()

    if state.status in ("aborted", "interrupted"):
        kind = "abort" if state.status == "aborted" else "interrupt"
        state.extra_events.append(event(state.stopped_at or ended, "peakready", kind,
                                        run_dir.name, reason=state.stop_reason,
                                        wound_down_at=ended))
    anchor = state.anchor if state.anchor is not None else state.load_started_at
    state.extra_events.extend(phase_events(spec.get("phases") or [], anchor, ended))
    schedule = sched.fault_schedule(spec.get("faults") or [])
    not_started = [f.name for f in schedule if f.name not in state.faults]
    runfolder.update_run_json(
        run_dir, status=state.status, ended_at=ended, abort_reason=state.stop_reason,
        faults=[_fault_summary(r) for r in state.faults.values()],
        faults_not_started=not_started,
    )

    # while the storefront is still up: is every confirmed order still there?
    _verify_orders(run_dir, target, view)
    _collect(opts, spec, target, state, view, anchor, ended)
    target.stop(keep_logs_in=run_dir / runfolder.LOGS_DIR / "sandbox")
    view.say("target stopped" if target.kind == "sandbox" else "collection done")
    return _analyze(opts, run_dir, state, view)


def _fault_summary(r: RunningFault) -> dict[str, Any]:
    from peakready.chaos.journal import read_outcome

    outcome = read_outcome(r.process.journal_path)
    return {"name": r.fault.name, "experiment": r.fault.experiment, "at_s": r.fault.at_s,
            "launched_at": r.launched_at, "ended_at": r.ended_at,
            "returncode": r.process.returncode, "interrupted": bool(r.process.interrupted),
            "journal": str(r.process.journal_path), "status": outcome.status,
            "ok": outcome.ok, "reason": outcome.reason,
            "rollbacks_ran": outcome.rollbacks_ran}


def _verify_orders(run_dir: Path, target: Target, view: LiveView) -> None:
    try:
        from peakready.verify import verify_orders

        checked = verify_orders(run_dir, target.storefront_url, progress=lambda done, total:
                                view.say(f"verifying orders: {done}/{total} looked up"))
        found = int(checked["found"].sum()) if len(checked) else 0
        view.say(f"orders verified: {found}/{len(checked)} found")
    except Exception as exc:  # noqa: BLE001 - a missing check is reported by analysis
        view.say(f"order verification failed: {exc}")
        runfolder.update_run_json(run_dir, verify_error=str(exc)[:300])


def _collect(opts: RunOptions, spec: dict[str, Any], target: Target, state: RunState,
             view: LiveView, anchor: float, ended: float) -> None:
    settle = opts.settle_s
    if settle is None:
        # the sandbox publishes every period; CloudWatch lags 1-3 minutes behind
        settle = target.base_period_s + 1.0 if target.kind == "sandbox" else AWS_SETTLE_S
    if settle > 0:
        view.say(f"waiting {settle:.0f} s for the last metrics to be published")
        time.sleep(settle)
    # one period of margin: the period that holds the load's first requests, not the
    # target's own start-up
    start = min(anchor, state.load_started_at) - target.base_period_s
    if target.observer is not None:  # pages and incidents into paging/, before collecting
        target.observer.finish(start, ended + settle)
        for warning in target.observer.warnings[:10]:
            view.say(f"paging warning: {warning}")
    alarms = list((spec.get("target") or {}).get("alarms") or [])
    alarms += list((spec.get("stop_conditions") or {}).get("alarms") or [])
    summary = collect_run(
        state.run_dir, target.clients, target.resources, start, ended + settle,
        alarms=alarms, base_period_s=target.base_period_s,
        faults=[r.record() for r in state.faults.values()], extra_events=state.extra_events,
    )
    runfolder.update_run_json(state.run_dir, collect=summary.as_dict())
    _collect_api_logs(spec, target, state, view, start, ended + settle)
    view.say(f"collected {summary.metrics_rows} metric datapoints ({summary.series} series), "
             f"{summary.events_rows} events {summary.events_by_kind}")
    for warning in summary.warnings[:10]:
        view.say(f"collect warning: {warning}")


def _collect_api_logs(spec: dict[str, Any], target: Target, state: RunState, view: LiveView,
                      start: float, end: float) -> None:
    """The API logs of the window through Athena, when the plan checks the pipeline."""
    from peakready.collect import apilogs

    try:
        found = apilogs.collect_planned(state.run_dir, target.clients, spec, start, end,
                                        target.base_period_s, target.kind == "sandbox")
    except Exception as exc:  # noqa: BLE001 - analysis says what is missing
        view.say(f"api logs not collected: {type(exc).__name__}: {exc}")
        return
    if found is not None:
        view.say("api logs: " + ", ".join(
            f"{k} {q.get('state')} ({q.get('rows', q.get('reason'))})"
            for k, q in found["queries"].items()))


def _analyze(opts: RunOptions, run_dir: Path, state: RunState, view: LiveView) -> int:
    code = EXIT_CHECK_FAILED
    if opts.analyze:
        try:
            import analysis

            verdict = analysis.analyze(run_dir, opts.baseline)
            code = int(verdict.get("exit_code", EXIT_CHECK_FAILED))
            view.say(f"verdict: {verdict.get('verdict', verdict.get('status', code))} "
                     f"(report {run_dir / 'report.html'})")
        except Exception as exc:  # noqa: BLE001 - the data is kept; analyze can be re-run
            view.say(f"analysis failed: {type(exc).__name__}: {exc}; "
                     f"re-run with: peakready analyze {run_dir}")
            code = EXIT_CHECK_FAILED
    if state.status == "aborted":
        code = EXIT_ABORTED
    elif state.status == "interrupted":
        code = EXIT_INTERRUPTED
    elif state.status == "failed":
        code = max(code, EXIT_CHECK_FAILED)
    runfolder.update_run_json(run_dir, exit_code=code)
    view.say(f"run {state.status}; exit code {code}; folder {run_dir}")
    return code


def dry_run(plan: Any, spec: dict[str, Any], view: LiveView) -> int:
    """Validate everything, inject nothing, start no load."""
    from peakready.chaos import safety

    aws_env = None
    if spec["target"]["kind"] == "aws":
        aws_env = AwsClients(spec["target"].get("region") or REGION).env()
    report = safety.dry_run(plan, aws_env)
    if spec["target"]["kind"] == "aws" and isinstance(report, dict):
        from peakready.paging import observer as pages

        region = spec["target"].get("region") or "eu-central-1"
        report["paging"] = pages.preflight(spec["target"], AwsClients(region), region) or \
            ["no alarm topics to observe (target.paging.topics)"]
    view.say(f"dry run of {spec.get('name')}: nothing injected, no load")
    if isinstance(report, dict):
        for key, value in report.items():
            view.say(f"  {key}:" + ("" if isinstance(value, list | tuple) else f" {value}"))
            if isinstance(value, list | tuple):
                for item in value:
                    view.say(f"    {item}")
    return 0
