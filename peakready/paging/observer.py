"""A run's page observer: what reached the on-call side, written to ``paging/`` as it
arrives so a crash loses nothing already seen.

- sandbox target: the sandbox's own pager (``peakready.sandbox.pager``): its pages and its
  PagerDuty-style incidents are read at the end of the run, before the sandbox stops;
- aws target with ``target.paging.topics``: a temporary SQS queue on those topics
  (``sqs``), drained every second during the run, deleted at the end (and by the reaper
  if the run dies); with ``target.paging.pagerduty``, the incidents of the run window.

``close()`` is idempotent and always runs (``Target.stop``), also after Ctrl-C, a stop
condition or an exception.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from peakready.collect.pages import INCIDENTS_FILE, PAGING_DIR
from peakready.errors import BadInput
from peakready.paging import config as cfg_mod
from peakready.paging import pagerduty
from peakready.paging import sqs as sqs_mod

POLL_S = 1.0


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def token(pd: cfg_mod.PagerDutyConfig, environ: dict[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(pd.token_env, "")
    if not value:
        raise BadInput(f"plan: target.paging.pagerduty.token_env: {pd.token_env} is not set "
                       "(the PagerDuty REST token is read from the environment)")
    return value


def topic_arns(paging: cfg_mod.PagingConfig, clients: Any, region: str) -> list[str]:
    """The plan's topics as ARNs (a bare name is in the caller's account and region)."""
    if all(t.startswith("arn:") for t in paging.topics):
        return list(paging.topics)
    account = clients("sts").get_caller_identity()["Account"]
    return [t if t.startswith("arn:") else f"arn:aws:sns:{region}:{account}:{t}"
            for t in paging.topics]


def preflight(spec_target: dict[str, Any], clients: Any, region: str) -> list[str]:
    """Every observed topic exists (BadInput, exit 2, otherwise); notes on encryption and
    on what could not be verified; the PagerDuty token and services work."""
    paging = cfg_mod.from_target(spec_target)
    notes: list[str] = []
    if paging.topics:
        arns = topic_arns(paging, clients, region)
        for i, arn in enumerate(arns):
            try:
                attrs = clients("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
            except Exception as exc:  # noqa: BLE001 - any answer but the topic is a refusal
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                what = "no such topic" if code in ("NotFound", "NotFoundException") else \
                    f"cannot read it ({code or type(exc).__name__})"
                raise BadInput(f"plan: target.paging.topics[{i}]: {arn}: {what}") from None
            subs = attrs.get("SubscriptionsConfirmed", "?")
            notes.append(f"paging: topic {arn} exists ({subs} confirmed subscriptions); a "
                         "temporary SQS queue will observe it during the run")
            if attrs.get("KmsMasterKeyId"):
                notes.append(f"paging: {arn} is encrypted with {attrs['KmsMasterKeyId']}: "
                             "CloudWatch needs kms:Decrypt and kms:GenerateDataKey* on that key "
                             "or its alarms deliver nothing")
        notes.append("paging: permissions for sqs:CreateQueue/SetQueueAttributes/"
                     "ReceiveMessage/DeleteQueue and sns:Subscribe/Unsubscribe are exercised "
                     "when the run starts (the queue is created before any load)")
    if paging.pagerduty:
        pd = paging.pagerduty
        secret = token(pd)
        for service in pd.services:
            try:
                pagerduty.check_service(pd.api_url, secret, service)
            except pagerduty.PagerDutyError as exc:
                raise BadInput(f"plan: target.paging.pagerduty.services: {service}: {exc}"
                               ) from None
        notes.append(f"paging: PagerDuty token from {pd.token_env} works for "
                     f"{', '.join(pd.services)}")
    return notes


class Observer:
    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / PAGING_DIR
        self.warnings: list[str] = []

    def finish(self, since: float, until: float) -> None:
        """Read what is left (called after the settle wait, while the target is up)."""

    def close(self) -> None:
        """Delete what was created for the run; safe to call twice."""


class SandboxPager(Observer):
    """The sandbox's pager: pages and incidents, read once at the end."""

    def __init__(self, run_dir: Path, paging_status: dict[str, Any]) -> None:
        super().__init__(run_dir)
        self.url = paging_status["pager_url"]
        self.pd = cfg_mod.PagerDutyConfig((paging_status["pagerduty_service_id"],), "",
                                          paging_status["pagerduty_api_url"])
        self.token = paging_status["pagerduty_token"]

    def finish(self, since: float, until: float) -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/pages", timeout=10) as resp:
                pages = json.loads(resp.read())["pages"]
            _append(self.dir / "pager.jsonl", pages)
            _append(self.dir / INCIDENTS_FILE, pagerduty.incidents(
                self.pd.api_url, self.token, list(self.pd.services), since, until + 1))
        except (OSError, ValueError, KeyError, pagerduty.PagerDutyError) as exc:
            self.warnings.append(f"sandbox pager unreadable: {exc}")


class SqsObserver(Observer):
    """The temporary queue on the plan's topics, drained in the background."""

    def __init__(self, run_dir: Path, spec_target: dict[str, Any], clients: Any,
                 region: str, run_id: str) -> None:
        super().__init__(run_dir)
        self.paging = cfg_mod.from_target(spec_target)
        self.clients, self.region, self.run_id = clients, region, run_id
        self.cleanup_file = self.dir / "cleanup.json"
        self.res: sqs_mod.QueueResources | None = None
        self.reaper = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> list[str]:
        from peakready.run import reaper

        self.dir.mkdir(parents=True, exist_ok=True)
        arns = topic_arns(self.paging, self.clients, self.region)
        env = dict(os.environ)  # the run's own credential chain, nothing written down
        # the watcher first: a crash between two of the create calls is covered
        self.cleanup_file.write_text(json.dumps({"region": self.region}))
        self.reaper = reaper.spawn_cleanup(os.getpid(), self.cleanup_file, env)
        self.res = sqs_mod.create(self.clients("sqs"), self.clients("sns"), self.run_id, arns,
                                  self.region, self.cleanup_file)
        self._thread = threading.Thread(target=self._poll_loop, name="page-queue", daemon=True)
        self._thread.start()
        return [f"paging: temporary queue {self.res.queue_url} subscribed to "
                f"{', '.join(arns)}"]

    def _drain(self) -> None:
        with self._lock:
            if self.res is None or self._closed:
                return
            _append(self.dir / "sqs.jsonl", sqs_mod.receive(self.clients("sqs"), self.res))

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._drain()
            except Exception as exc:  # noqa: BLE001 - keep polling; reported at the end
                if len(self.warnings) < 20:
                    self.warnings.append(f"page queue: {exc}")

    def finish(self, since: float, until: float) -> None:
        try:
            self._drain()
        except Exception as exc:  # noqa: BLE001
            self.warnings.append(f"page queue: {exc}")
        pd = self.paging.pagerduty
        if pd is not None:
            try:
                _append(self.dir / INCIDENTS_FILE, pagerduty.incidents(
                    pd.api_url, token(pd), list(pd.services), since, until + 1))
            except (pagerduty.PagerDutyError, BadInput) as exc:
                self.warnings.append(f"pagerduty: {exc}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            problems = sqs_mod.delete(self.clients("sqs"), self.clients("sns"), self.res) \
                if self.res is not None else []
        if problems:
            self.warnings.extend(problems)  # the reaper retries once this process is gone
        else:
            self.cleanup_file.unlink(missing_ok=True)
            if self.reaper is not None:
                self.reaper.kill()
                self.reaper.wait()


def for_run(spec: dict[str, Any], target: Any, run_dir: Path) -> tuple[Observer | None,
                                                                        list[str]]:
    """The observer for this run and target (None when there is nothing to observe)."""
    if target.kind == "sandbox":
        status = ((target.sandbox_status or {}).get("control_plane") or {}).get("paging") or {}
        if not status.get("pager_url"):
            return None, ["paging: the sandbox has no pager: pages are not observed"]
        return SandboxPager(run_dir, status), [f"paging: the sandbox's pager at "
                                               f"{status['pager_url']} records the pages"]
    paging = cfg_mod.from_target(spec.get("target") or {})
    if not paging.topics:
        return None, []
    observer = SqsObserver(run_dir, spec["target"], target.clients, target.region,
                           Path(run_dir).name)
    try:
        notes = observer.start()
    except Exception as exc:
        observer.close()
        raise BadInput(f"plan: target.paging.topics: the temporary queue could not be set up: "
                       f"{exc}") from None
    return observer, notes
