"""Separate "hosts" on this machine for the distributed load tests.

As root: one network namespace for the master (and the storefront), one per worker, the
workers' veth pairs on a bridge in the master's namespace, 10.x addresses (a /24 of
10.77-10.126 picked per test process, so parallel tests do not collide). Nothing but the
network is separated (ip-netns(8)), so each worker also gets its own working folder.
Everything is removed when the ``hosts`` context ends, failed test or not: deleting a
namespace deletes its veth ends and bridge.

Not root (or ``ip netns`` refused): the same scenario on loopback, said so in ``reason``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

NO_NETNS_ENV = "PEAKREADY_TEST_NO_NETNS"  # set to 1 to run the loopback fallback as root


@dataclass
class Hosts:
    isolated: bool
    master_ip: str
    worker_ips: list[str]
    reason: str = ""
    namespaces: list[str] = field(default_factory=list)

    def prefix(self, host: str) -> list[str]:
        """Command prefix running a process on ``host`` ("master" or "w0", "w1", ...)."""
        if not self.isolated:
            return []
        index = 0 if host == "master" else 1 + int(host.lstrip("w"))
        return ["ip", "netns", "exec", self.namespaces[index]]

    def get_json(self, url: str) -> dict:
        """GET from the master's host (the test process itself is on neither)."""
        code = ("import json,sys,urllib.request;"
                "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
        out = subprocess.run([*self.prefix("master"), sys.executable, "-c", code, url],
                             capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def _can_netns() -> str:
    if os.environ.get(NO_NETNS_ENV) == "1":
        return f"{NO_NETNS_ENV}=1"
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return ""


def _remove_stale() -> None:
    """Namespaces of a test process that was killed before its fixture could clean up."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = name[2:].split("-")[0] if name.startswith("pr") and "-" in name else ""
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@contextlib.contextmanager
def hosts(workers: int) -> Iterator[Hosts]:
    why_not = _can_netns()
    if why_not:
        yield Hosts(False, "127.0.0.1", ["127.0.0.1"] * workers,
                    reason=f"loopback processes instead of network namespaces ({why_not})")
        return
    _remove_stale()
    tag = f"pr{os.getpid() % 100000}"
    net = 77 + os.getpid() % 50
    names = [f"{tag}-m", *(f"{tag}-w{i}" for i in range(workers))]
    made: list[str] = []
    try:
        for name in names:
            _run("ip", "netns", "add", name)
            made.append(name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        master = names[0]
        _run("ip", "-n", master, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", master, "addr", "add", f"10.{net}.0.1/24", "dev", "br0")
        _run("ip", "-n", master, "link", "set", "br0", "up")
        for i, ns in enumerate(names[1:]):
            _run("ip", "-n", master, "link", "add", f"vm{i}", "type", "veth",
                 "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", master, "link", "set", f"vm{i}", "master", "br0")
            _run("ip", "-n", master, "link", "set", f"vm{i}", "up")
            _run("ip", "-n", ns, "addr", "add", f"10.{net}.0.{10 + i}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
    except (subprocess.CalledProcessError, OSError) as exc:
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        err = getattr(exc, "stderr", b"") or b""
        yield Hosts(False, "127.0.0.1", ["127.0.0.1"] * workers,
                    reason=f"loopback processes instead of network namespaces (ip netns "
                    f"failed: {err.decode(errors='replace').strip() or exc})")
        return
    try:
        yield Hosts(True, f"10.{net}.0.1", [f"10.{net}.0.{10 + i}" for i in range(workers)],
                    reason="network namespaces", namespaces=names)
    finally:
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
