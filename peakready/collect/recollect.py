"""Collect a run's window again, later (``peakready collect RUN_DIR``).

CloudWatch lags 1-3 minutes on AWS, and a run killed before its collection has none: this
reads what the run folder recorded (run.json window and target, plan.yaml resources and
alarms, the chaos journals), builds clients (the ordinary boto3 credential chain on AWS;
the run's own sandbox only while it is still up), calls ``collect_run`` into a staging
folder and then replaces ``metrics.parquet``/``events.parquet`` atomically. The run's own
events (``abort``, ``interrupt``, ``phase``) are kept, and so is what a source that failed
this time had delivered before: ``collect_run`` names its failed sources as data
(``SourceFailure``), never as warning text to parse back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from peakready import runfolder
from peakready.collect import (
    AWS_SETTLE_S,
    FETCHED,
    AwsClients,
    FaultRecord,
    SourceFailure,
    collect_run,
)
from peakready.errors import BadInput
from peakready.sandbox.aws import names

LIVE_FRESH_S = 10.0  # a live.json younger than this: the load is still running


# --- what the run folder says (pure) --------------------------------------------------

@dataclass(frozen=True)
class RunWindow:
    kind: str  # sandbox | aws
    region: str
    resources: dict[str, Any]
    alarms: list[str]
    start: float
    end: float
    ended_at: float
    anchor: float


def read_folder(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """run.json, plan.yaml and live.json of a run folder; BadInput if it is not one."""
    if not (run_dir / runfolder.RUN_JSON).is_file():
        raise BadInput(f"{run_dir}: not a run folder (no {runfolder.RUN_JSON})")
    try:
        run = runfolder.read_run_json(run_dir)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{run_dir / runfolder.RUN_JSON}: unreadable: {exc}") from None
    plan: dict[str, Any] = {}
    if (run_dir / runfolder.PLAN_YAML).is_file():
        try:
            plan = yaml.safe_load((run_dir / runfolder.PLAN_YAML).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInput(f"{run_dir / runfolder.PLAN_YAML}: unreadable: {exc}") from None
    live: dict[str, Any] = {}
    try:
        live = json.loads((run_dir / runfolder.LIVE_STATUS).read_text())
    except (OSError, ValueError):
        pass  # optional: only refines the load's time zero and a killed run's end
    return run, plan if isinstance(plan, dict) else {}, live if isinstance(live, dict) else {}


def run_window(run: Mapping[str, Any], plan: Mapping[str, Any], live: Mapping[str, Any],
               base_period_s: float, after_s: float | None, now: float,
               sandbox_resources: Mapping[str, Any] | None = None) -> RunWindow:
    """The window and target `peakready run` collected (one period before the load's time
    zero, the run's end plus the settle time), from what the folder recorded."""
    target = dict(run.get("target") or {})
    plan_target = dict(plan.get("target") or {})
    kind = target.get("kind") or ("sandbox" if sandbox_resources is not None else None)
    if kind not in ("sandbox", "aws"):
        raise BadInput("run.json: target: not recorded (a `peakready load` folder?): pass "
                       "--sandbox-state DIR for the sandbox the load ran against")
    resources = dict(target.get("resources") or plan_target.get("resources") or {})
    for key, value in (sandbox_resources or {}).items():
        resources.setdefault(key, value)
    if not resources:
        raise BadInput("run.json: target.resources: none recorded; nothing to collect")
    region = target.get("region") or plan_target.get("region") or names.REGION
    alarms = list(plan_target.get("alarms") or [])
    alarms += [a for a in ((plan.get("stop_conditions") or {}).get("alarms") or [])
               if a not in alarms]
    started = _number(run.get("load_started_at")) or _number(run.get("started_at"))
    if started is None:
        raise BadInput("run.json: load_started_at: not recorded; the run window is unknown")
    anchor = started
    if _number(live.get("ts")) is not None and _number(live.get("elapsed_s")) is not None:
        anchor = min(started, float(live["ts"]) - float(live["elapsed_s"]))
    ended = _number(run.get("ended_at")) or _number(live.get("ts"))
    if ended is None:
        raise BadInput("run.json: ended_at: not recorded (and no live.json); the run "
                       "window is unknown")
    if after_s is None:
        after_s = base_period_s + 1.0 if kind == "sandbox" else AWS_SETTLE_S
    if after_s < 0:
        raise BadInput(f"--after-s: must be >= 0, got {after_s:g}")
    start = anchor - base_period_s
    end = min(ended + after_s, now)
    if end <= start:
        raise BadInput(f"run.json: ended_at: {ended} is before the load started ({started})")
    return RunWindow(kind, str(region), resources, alarms, start, end, ended, anchor)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def fault_records(run_dir: Path, run: Mapping[str, Any]) -> list[Any]:
    """One FaultRecord per fault the run launched (run.json), plus any journal in chaos/
    that run.json does not list (a run killed before it wrote its summary)."""
    from peakready.chaos.journal import read_outcome

    out, seen = [], set()
    for f in run.get("faults") or []:
        journal = run_dir / runfolder.CHAOS_DIR / Path(str(f.get("journal") or "")).name
        launched = _number(f.get("launched_at")) or 0.0
        out.append(FaultRecord(str(f.get("name")), str(f.get("experiment") or ""),
                               str(journal), launched, _number(f.get("ended_at")),
                               f.get("returncode"), bool(f.get("interrupted"))))
        seen.add(journal.name)
    for journal in sorted((run_dir / runfolder.CHAOS_DIR).glob("*.journal.json")):
        if journal.name in seen:
            continue
        outcome = read_outcome(journal)
        start = _number(_epoch(outcome.start)) or journal.stat().st_mtime
        out.append(FaultRecord(journal.name.removesuffix(".journal.json"), "", str(journal),
                               start, _number(_epoch(outcome.end)), None, False))
    return out


def _epoch(value: Any) -> float | None:
    from peakready.collect.events import _epoch as to_epoch

    try:
        return to_epoch(value)
    except (ValueError, TypeError):
        return None


def own_events(old: pd.DataFrame | None, run: Mapping[str, Any], plan: Mapping[str, Any],
               window: RunWindow, rebuilt_faults: Sequence[str]) -> list[dict[str, Any]]:
    """The events only the run knew (``abort``, ``interrupt``, ``phase``; source
    ``peakready``) and fault events of faults the journals cannot rebuild: kept from the
    previous events.parquet, else reconstructed from run.json and plan.yaml."""
    if old is not None and len(old):
        mine = old["source"].eq("peakready")
        lost = old["source"].eq("chaos") & ~old["resource"].isin(list(rebuilt_faults))
        return old[mine | lost].to_dict("records")
    from peakready.collect.events import event
    from peakready.run.engine import phase_events

    rows = phase_events(list(plan.get("phases") or []), window.anchor, window.ended_at)
    status = run.get("status")
    if status in ("aborted", "interrupted"):
        kind = "abort" if status == "aborted" else "interrupt"
        rows.append(event(window.ended_at, "peakready", kind, str(run.get("run_id") or ""),
                          reason=run.get("abort_reason"), reconstructed=True))
    return rows


def failed_sources(failures: Sequence[SourceFailure]) -> set[str]:
    """Event sources whose AWS fetch failed this time (their previous rows are kept)."""
    return {f.source for f in failures if f.file == runfolder.EVENTS and f.source in FETCHED}


def merge_events(new: pd.DataFrame, old: pd.DataFrame | None, failed: set[str]) -> pd.DataFrame:
    """The new events, plus the previous rows of every source that failed this time: a
    re-collection never loses what an earlier one got."""
    if old is None or not failed:
        return new
    keep = old[old["source"].isin(sorted(failed))]
    return (pd.concat([new, keep], ignore_index=True)
            .drop_duplicates(subset=["ts", "source", "kind", "resource"])
            .sort_values("ts", kind="stable").reset_index(drop=True))


# --- edges ----------------------------------------------------------------------------------

def sandbox_clients(target: Mapping[str, Any], state_dir: Path | None,
                    run_dir: Path) -> tuple[Any, dict]:
    """Clients for the run's sandbox while it is up; BadInput (one line) when it is gone
    (its daemon stopped, or another sandbox now answers there)."""
    from peakready import sandbox

    recorded_dir = target.get("sandbox_state_dir")
    chosen = state_dir or (Path(recorded_dir) if recorded_dir else None)
    status = sandbox.status(chosen) if chosen is not None else {"state": "stopped"}
    aws = status.get("aws") or {}
    recorded = target.get("aws_endpoint_url")
    gone = (status.get("state") != "running" or not aws.get("endpoint_url")
            or (recorded and aws.get("endpoint_url") != recorded))
    if not gone:
        clients = AwsClients(aws.get("region") or target.get("region") or names.REGION, aws)
        try:
            clients("sts").get_caller_identity()
        except Exception:  # noqa: BLE001 - any failure: the endpoint does not answer
            gone = True
    if gone:
        raise BadInput(f"{run_dir}: the sandbox this run used (AWS endpoint "
                       f"{recorded or aws.get('endpoint_url') or 'not recorded'}) is gone; a "
                       "sandbox run can only be collected while its sandbox is up")
    return clients, status


def aws_clients(window: RunWindow) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    clients = AwsClients(window.region)
    try:
        clients("sts").get_caller_identity()
    except NoCredentialsError:
        raise BadInput("target: no AWS credentials found (boto3 chain: AWS_PROFILE, "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance role)") from None
    except (ClientError, BotoCoreError) as exc:
        raise BadInput(f"target: cannot reach the AWS account: {str(exc).splitlines()[0]}") \
            from None
    return clients


def _read_parquet(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - a broken file is replaced, never trusted
        return None


def _replace(staged: Path, final: Path) -> None:
    os.replace(staged, final)  # same folder tree: atomic


def recollect(run_dir: Path, after_s: float | None = None, sandbox_state: Path | None = None,
              now: float | None = None) -> dict[str, Any]:
    """Collect the run window again; returns the summary written to run.json."""
    from peakready.collect.events import to_frame

    run_dir = Path(run_dir)
    run, plan, live = read_folder(run_dir)
    now = time.time() if now is None else now
    live_age = now - (_number(live.get("ts")) or 0.0)
    if run.get("status") == "running" and not live.get("done") and live_age < LIVE_FRESH_S:
        raise BadInput(f"{run_dir}: the run is still going (live.json {live_age:.0f} s old); "
                       "it collects by itself when it ends")
    target = dict(run.get("target") or {})
    kind = target.get("kind") or ("sandbox" if sandbox_state else None)
    base_period, sandbox_resources = 60.0, None
    if kind == "sandbox":
        clients, status = sandbox_clients(target, sandbox_state, run_dir)
        sandbox_resources = status.get("resources") or {}
        tracking = (status.get("control_plane") or {}).get("target_tracking") or {}
        base_period = float(tracking.get("period_s") or _sandbox_period())
    window = run_window(run, plan, live, base_period, after_s, now, sandbox_resources)
    if window.kind == "aws":
        clients = aws_clients(window)

    faults = fault_records(run_dir, run)
    old_events = _read_parquet(run_dir / runfolder.EVENTS)
    old_metrics = _read_parquet(run_dir / runfolder.METRICS)
    extra = own_events(old_events, run, plan, window, [f.name for f in faults])
    staging = run_dir / f".collect-{os.getpid()}"
    staging.mkdir(exist_ok=True)
    try:
        summary = collect_run(staging, clients, window.resources, window.start, window.end,
                              alarms=window.alarms, base_period_s=int(base_period),
                              faults=faults, extra_events=extra, now=now)
        notes = []
        failed = failed_sources(summary.failures)
        if old_events is not None:
            failed &= set(old_events["source"])  # only sources that had something to keep
        if failed and old_events is not None:
            merged = merge_events(pd.read_parquet(staging / runfolder.EVENTS), old_events,
                                  failed)
            to_frame(merged.to_dict("records")).to_parquet(staging / "events.tmp", index=False)
            _replace(staging / "events.tmp", staging / runfolder.EVENTS)
            notes.append(f"kept the previous events of {', '.join(sorted(failed))} "
                         "(their fetch failed this time)")
        keep_metrics = (summary.metrics_rows == 0 and old_metrics is not None
                        and len(old_metrics) > 0)
        if keep_metrics:
            notes.append(f"kept the previous {runfolder.METRICS} ({len(old_metrics)} rows): "
                         "this collection returned no datapoints")
        else:
            _replace(staging / runfolder.METRICS, run_dir / runfolder.METRICS)
        _replace(staging / runfolder.EVENTS, run_dir / runfolder.EVENTS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    events = pd.read_parquet(run_dir / runfolder.EVENTS)
    out = summary.as_dict()
    out.update(events_rows=len(events),
               events_by_kind={str(k): int(v) for k, v in events["kind"].value_counts().items()},
               window={"start": window.start, "end": window.end}, collected_at=now,
               notes=notes)
    if keep_metrics:
        out.update(metrics_rows=len(old_metrics), series=int(
            old_metrics[["namespace", "metric", "dimensions", "stat"]].drop_duplicates().shape[0]))
    from peakready.collect import apilogs  # the API logs again: the pipeline may have lagged

    apilogs.collect_planned(run_dir, clients, plan, window.start, window.end, int(base_period),
                            window.kind == "sandbox")
    previous = run.get("collect")
    fields: dict[str, Any] = {"collect": out}
    if previous:
        fields["collect_previous"] = previous
    runfolder.update_run_json(run_dir, **fields)
    return out


def _sandbox_period() -> float:
    from peakready.sandbox import timing

    return float(timing.load().metric_period_s)
