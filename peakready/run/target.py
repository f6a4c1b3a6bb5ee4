"""Where a run goes: the local sandbox (started for the run, always stopped) or a real
AWS account (ordinary credential chain, the plan's storefront URL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakready.collect.clients import AwsClients
from peakready.errors import BadInput
from peakready.sandbox.aws import names


@dataclass
class Target:
    kind: str  # sandbox | aws
    region: str
    storefront_url: str
    resources: dict[str, Any]
    clients: AwsClients
    sandbox_status: dict[str, Any] | None = None
    state_dir: Path | None = None
    base_period_s: int = 60
    notes: list[str] = field(default_factory=list)
    web_acl: dict[str, Any] | None = None  # the plan's target.web_acl as applied at start
    # components the target lacks, with why (run.json, read by the checks that need them)
    unavailable: dict[str, str] = field(default_factory=dict)
    reaper: subprocess.Popen | None = None  # stops the sandbox if this process is killed
    observer: Any = None  # peakready.paging.observer: closed (queue deleted) on stop

    @property
    def aws_env(self) -> dict[str, str]:
        return self.clients.env()

    def describe(self) -> dict[str, Any]:
        """For run.json: where the run went (no secrets)."""
        out: dict[str, Any] = {"kind": self.kind, "region": self.region,
                               "storefront_url": self.storefront_url,
                               "resources": self.resources}
        if self.sandbox_status:
            aws = self.sandbox_status.get("aws") or {}
            out["aws_endpoint_url"] = aws.get("endpoint_url")
            out["account_id"] = aws.get("account_id")
        if self.web_acl:
            out["web_acl"] = self.web_acl
        if self.state_dir is not None:
            out["sandbox_state_dir"] = str(self.state_dir)
        if self.unavailable:
            out["unavailable"] = dict(self.unavailable)
        return out

    def stop(self, keep_logs_in: Path | None = None) -> None:
        """Stop the sandbox (no-op for AWS), first copying its logs into the run folder;
        safe to call twice. The page observer is closed first (its queue deleted)."""
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.close()
        if self.kind != "sandbox" or self.state_dir is None:
            return
        from peakready import sandbox

        state_dir, self.state_dir = self.state_dir, None
        if keep_logs_in is not None:
            copy_logs(state_dir / "logs", keep_logs_in)
        try:
            sandbox.stop(state_dir)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
            if self.reaper is not None:
                self.reaper.kill()
                self.reaper.wait()


MAX_LOG_BYTES = 50 * 2**20


def copy_logs(source: Path, dest: Path) -> None:
    """The sandbox's process logs (daemon, storefronts, balancer access log, databases)
    are evidence of what happened; huge files are left out."""
    if not source.is_dir():
        return
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.rglob("*"):
        if path.is_file() and path.stat().st_size <= MAX_LOG_BYTES:
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, target)
            except OSError:
                continue


def open_aws(spec_target: dict[str, Any]) -> Target:
    url = spec_target.get("storefront_url")
    if not url:
        raise BadInput("plan: target.storefront_url: required for an aws target")
    region = spec_target.get("region") or names.REGION
    return Target("aws", region, str(url), dict(spec_target.get("resources") or {}),
                  AwsClients(region), base_period_s=60)


def start_sandbox(spec_target: dict[str, Any], logs_dir: Path | None = None) -> Target:
    """Start a private sandbox (free ports, its own state folder) for this run."""
    from peakready import sandbox
    from peakready.run import reaper
    from peakready.sandbox import timing as timing_mod

    state_dir = Path(tempfile.mkdtemp(prefix="peakready-run-sandbox-"))
    watcher = reaper.spawn(os.getpid(), state_dir)
    try:
        built = spec_target.get("sandbox") or {}
        status = sandbox.start(state_dir=state_dir, lb_port=0,
                               storefront=built.get("storefront"), search=built.get("search"))
    except BaseException as exc:
        try:
            sandbox.stop(state_dir)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
            watcher.kill()
            watcher.wait()
        if isinstance(exc, Exception):
            raise BadInput(f"the sandbox did not start: {exc}") from None
        raise
    aws = status.get("aws")
    region = (aws or {}).get("region") or spec_target.get("region") or names.REGION
    resources = dict(spec_target.get("resources") or {})
    for key, value in (status.get("resources") or {}).items():
        resources.setdefault(key, value)
    target = Target("sandbox", region, status["storefront_url"], resources,
                    AwsClients(region, aws), sandbox_status=status, state_dir=state_dir,
                    base_period_s=int(timing_mod.load().metric_period_s),
                    reaper=watcher)
    if not aws:
        target.notes.append("the sandbox has no AWS endpoint: faults and collection cannot run")
    missing = (status.get("search") or {}).get("unavailable")
    if missing:
        target.unavailable["search"] = missing
        target.notes.append(missing)
    return target
