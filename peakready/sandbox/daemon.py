"""The sandbox daemon: owns the Stack and the addons, publishes ``status.json``.

Run by ``peakready.sandbox.start()`` as ``python -m peakready.sandbox.daemon``; SIGTERM
stops the addons, then every child, then the process. All children are killed by the
kernel if the daemon itself is killed (PDEATHSIG), so nothing outlives it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path

from peakready.runfolder import write_json_atomic
from peakready.sandbox import addons as addons_mod
from peakready.sandbox import timing as timing_mod
from peakready.sandbox.control import PID_FILE, STATUS_FILE
from peakready.sandbox.stack import Stack

log = logging.getLogger("peakready.sandbox.daemon")
READY_TIMEOUT_S = 60.0
PREWARM_MODULES = ("peakready.sandbox.aws.plane",)  # the control plane: moto, ~2 s of CPU


def _prewarm() -> None:
    """Import the addons' heavy modules while the data plane starts: that start mostly
    waits on child processes, so the import costs the ready time almost nothing."""
    import importlib

    for name in PREWARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - addons() reports real import errors later
            pass


class Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.state_dir = Path(args.state_dir).resolve()
        self.instances = args.instances
        overrides = json.loads(args.timing) if args.timing else None
        self.timing = (timing_mod.Timing(**overrides) if overrides is not None
                       else timing_mod.load())
        self.stack = Stack(self.state_dir, self.timing, args.lb_port,
                           json.loads(args.storefront) if args.storefront else None,
                           json.loads(args.search) if args.search else None)
        self.addons: list = []
        self.started_at = time.time()
        self.ready_s: float | None = None
        self.stop_event = threading.Event()
        self.state = "starting"

    def status(self) -> dict:
        out = {"state": self.state, "state_dir": str(self.state_dir), "pid": os.getpid(),
               "started_at": self.started_at, "ready_s": self.ready_s}
        out.update(self.stack.status())
        for addon in self.addons:
            try:
                out.update(addon.status() or {})
            except Exception as exc:  # noqa: BLE001 - status must not kill the daemon
                out.setdefault("addon_errors", []).append(f"{type(addon).__name__}: {exc}")
        return out

    def publish(self) -> None:
        write_json_atomic(self.state_dir / STATUS_FILE, self.status())

    def run(self) -> int:
        (self.state_dir / PID_FILE).write_text(str(os.getpid()))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        threading.Thread(target=_prewarm, name="prewarm", daemon=True).start()
        try:
            self.stack.start(instances=0)
            log.info("data plane up after %.2f s", time.time() - self.started_at)
            self.addons = list(addons_mod.addons(self.stack, self.timing, self.state_dir,
                                                  instances=self.instances))
            for addon in self.addons:
                addon.start()
                log.info("addon %s started after %.2f s", type(addon).__name__,
                         time.time() - self.started_at)
            manages_web = any(getattr(a, "manages_web_tier", False) for a in self.addons)
            wanted = 1 if manages_web else self.instances
            if not manages_web:
                from peakready.sandbox.stack import new_instance_id

                for _ in range(self.instances):
                    iid = new_instance_id()
                    self.stack.launch_instance(iid)
                    self.stack.register_target(iid)
            if not self._wait_ready(wanted):
                if self.stop_event.is_set():
                    raise RuntimeError("stopped while starting")
                raise RuntimeError(f"storefront not healthy after {READY_TIMEOUT_S:.0f} s")
            self.stack.booting = False  # from here a launched instance boots as a new VM
        except Exception as exc:  # noqa: BLE001 - reported to the starter through status.json
            traceback.print_exc()
            self.state = "failed"
            write_json_atomic(self.state_dir / STATUS_FILE,
                              {"state": "failed", "error": f"{type(exc).__name__}: {exc}",
                               "state_dir": str(self.state_dir), "pid": os.getpid()})
            self.shutdown()
            return 1
        self.ready_s = round(time.time() - self.started_at, 3)
        log.info("ready after %.2f s", self.ready_s)
        self.state = "running"
        self.publish()
        while not self.stop_event.wait(1.0):
            try:
                self.publish()
            except Exception:  # noqa: BLE001 - keep serving; the next publish may work
                traceback.print_exc()
        self.state = "stopping"
        self.shutdown()
        return 0

    def _wait_ready(self, healthy_targets: int) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not self.stop_event.is_set():
            states = self.stack.target_health() if healthy_targets else {}
            healthy = sum(1 for s in states.values() if s == "healthy")
            addons_ready = all(getattr(a, "ready", lambda: True)() for a in self.addons)
            if healthy >= healthy_targets and addons_ready:
                return True
            time.sleep(0.1)
        return False

    def shutdown(self) -> None:
        for addon in reversed(self.addons):
            try:
                addon.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                traceback.print_exc()
        self.stack.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-sandbox-daemon")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--lb-port", type=int, default=0)
    p.add_argument("--timing", help="Timing fields as JSON (default: PEAKREADY_TIMING)")
    p.add_argument("--storefront", help="storefront config JSON")
    p.add_argument("--search", help="search domain config JSON (over PEAKREADY_SEARCH)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return Daemon(parse(argv)).run()


if __name__ == "__main__":
    raise SystemExit(main())
