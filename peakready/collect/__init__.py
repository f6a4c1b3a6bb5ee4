"""Collection: what the infrastructure did during a run, into ``metrics.parquet`` and
``events.parquet`` (docs/run-folder.md). The same code runs against the sandbox's AWS
endpoint and a real account; only the ``AwsClients`` differ.

Every source is fetched on its own: one that fails (an API the endpoint lacks, a missing
permission) becomes a ``SourceFailure`` in the summary (and a warning line), never a lost
collection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from peakready import runfolder
from peakready.awslag import AWS_SETTLE_S
from peakready.collect import events as ev
from peakready.collect import metrics as mx
from peakready.collect import pages as pg
from peakready.collect.clients import AwsClients
from peakready.collect.faults import FaultRecord, fault_rows

__all__ = ["AWS_SETTLE_S", "AwsClients", "CollectSummary", "FaultRecord", "SourceFailure", "collect_run",
           "resolve_names"]


# events.parquet sources fetched from an AWS API (chaos/peakready rows come from disk)
FETCHED = frozenset({"autoscaling", "rds", "elasticache", "cloudwatch"})


@dataclass(frozen=True)
class SourceFailure:
    """One fetch that failed: which run-folder file lacks which source's rows, and why."""

    source: str  # the rows' `source`: autoscaling | rds | elasticache | cloudwatch | chaos
    file: str  # runfolder.EVENTS or runfolder.METRICS
    what: str  # the API call, e.g. "rds describe_events peakready-db"
    error: str

    @property
    def warning(self) -> str:
        return f"{self.what}: {self.error}"


@dataclass
class CollectSummary:
    metrics_rows: int = 0
    series: int = 0
    events_rows: int = 0
    period_s: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics_rows": self.metrics_rows, "series": self.series,
                "events_rows": self.events_rows, "period_s": self.period_s,
                "events_by_kind": self.events_by_kind, "warnings": self.warnings}


def _fail(summary: CollectSummary, source: str, file: str, what: str,
          error: BaseException | str) -> None:
    text = error if isinstance(error, str) else mx.short_error(error)
    failure = SourceFailure(source, file, what, text)
    summary.failures.append(failure)
    summary.warnings.append(failure.warning)


def resolve_names(clients: AwsClients, resources: Mapping[str, Any],
                  summary: CollectSummary) -> dict[str, Any]:
    """Resource names plus the members AWS knows (cluster instances, cache nodes)."""
    db_instances = list(resources.get("db_instances") or [])
    cache_members: list[str] = []
    cluster = resources.get("db_cluster")
    if cluster:
        try:
            found = clients("rds").describe_db_clusters(DBClusterIdentifier=cluster)
            for member in found["DBClusters"][0].get("DBClusterMembers", []):
                if member["DBInstanceIdentifier"] not in db_instances:
                    db_instances.append(member["DBInstanceIdentifier"])
        except Exception as exc:  # noqa: BLE001
            _fail(summary, "rds", runfolder.EVENTS, f"rds describe_db_clusters {cluster}", exc)
    group = resources.get("cache_replication_group")
    if group:
        try:
            found = clients("elasticache").describe_replication_groups(ReplicationGroupId=group)
            cache_members = list(found["ReplicationGroups"][0].get("MemberClusters", []))
        except Exception as exc:  # noqa: BLE001
            _fail(summary, "elasticache", runfolder.EVENTS,
                  f"elasticache describe_replication_groups {group}", exc)
    names = {v for k, v in resources.items() if isinstance(v, str) and v}
    names.update(db_instances)
    names.update(cache_members)
    return {"names": names, "db_instances": db_instances, "cache_members": cache_members}


def _alarm_filter(alarms: Sequence[str], resource_names: set[str]) -> Callable[[str], bool]:
    """The plan's alarms, plus alarms AWS made for our resources (target tracking names its
    alarms ``TargetTracking-<group>-AlarmHigh-<uuid>``)."""
    named = set(alarms)
    return lambda name: name in named or any(r in name for r in resource_names)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def collect_run(
    run_dir: Path | str,
    clients: AwsClients,
    resources: Mapping[str, Any],
    start: float,
    end: float,
    *,
    alarms: Sequence[str] = (),
    base_period_s: int = 60,
    faults: Sequence[FaultRecord] = (),
    extra_events: Sequence[Mapping[str, Any]] = (),
    read_outcome: Callable[[Path], Any] | None = None,
    now: float | None = None,
) -> CollectSummary:
    """Collect [start, end] into the run folder; returns counts and warnings."""
    run_dir = Path(run_dir)
    summary = CollectSummary()
    now = time.time() if now is None else now
    resolved = resolve_names(clients, resources, summary)
    names: set[str] = resolved["names"]

    # metrics
    period = mx.choose_period(start, end, now, base_period_s)
    summary.period_s = period
    try:
        found = mx.discover(clients("cloudwatch").list_metrics, names)
        queries = mx.build_queries(found)
        rows, warnings = mx.fetch(clients("cloudwatch").get_metric_data, queries, start, end, period)
        for warning in warnings:  # one query of many: "<namespace> <metric> <stat>: error"
            what, _, error = warning.partition(": ")
            _fail(summary, "cloudwatch", runfolder.METRICS, what, error)
        metrics = mx.to_frame(rows, queries, start, end, period)
    except Exception as exc:  # noqa: BLE001
        _fail(summary, "cloudwatch", runfolder.METRICS, "cloudwatch metrics", exc)
        metrics = mx.empty_frame()
    summary.metrics_rows = len(metrics)
    summary.series = int(metrics[["namespace", "metric", "dimensions", "stat"]]
                         .drop_duplicates().shape[0]) if len(metrics) else 0

    # events
    rows_ev: list[dict] = []
    sources: list[tuple[str, str, Callable[[], list[dict]]]] = []  # (source, what, fetch)
    if resources.get("autoscaling_group"):
        group = resources["autoscaling_group"]
        sources.append(("autoscaling", f"autoscaling describe_scaling_activities {group}",
                        lambda: ev.fetch_scaling(clients("autoscaling"), group, start, end)))
    if resources.get("db_cluster"):
        cluster = resources["db_cluster"]
        sources.append(("rds", f"rds describe_events {cluster}",
                        lambda: ev.fetch_rds(clients("rds"), cluster, resolved["db_instances"],
                                             start, end)))
    if resources.get("cache_replication_group"):
        cache = resources["cache_replication_group"]
        sources.append(("elasticache", f"elasticache describe_events {cache}",
                        lambda: ev.fetch_cache(clients("elasticache"), cache,
                                               resolved["cache_members"], start, end)))
    sources.append(("cloudwatch", "cloudwatch describe_alarm_history",
                    lambda: ev.fetch_alarms(clients("cloudwatch"), start, end,
                                            _alarm_filter(alarms, names))))
    sources.append(("cloudwatch", "cloudwatch describe_alarm_history Action",
                    lambda: pg.fetch_actions(clients("cloudwatch"), start, end,
                                             _alarm_filter(alarms, names))))
    sources.append(("pager", "paging records",
                    lambda: pg.folder_rows(run_dir, start, end)))
    for source, what, fetch in sources:
        try:
            rows_ev.extend(fetch())
        except Exception as exc:  # noqa: BLE001
            _fail(summary, source, runfolder.EVENTS, what, exc)

    if faults:
        if read_outcome is None:
            from peakready.chaos.journal import read_outcome as chaos_read_outcome

            read_outcome = chaos_read_outcome
        try:
            rows_ev.extend(fault_rows(faults, read_outcome))
        except Exception as exc:  # noqa: BLE001
            _fail(summary, "chaos", runfolder.EVENTS, "chaos journals", exc)
    rows_ev.extend(dict(e) for e in extra_events)
    events = ev.to_frame(rows_ev)
    summary.events_rows = len(events)
    summary.events_by_kind = {str(k): int(v) for k, v in events["kind"].value_counts().items()}

    _write_parquet(metrics, run_dir / runfolder.METRICS)
    _write_parquet(events, run_dir / runfolder.EVENTS)
    return summary
