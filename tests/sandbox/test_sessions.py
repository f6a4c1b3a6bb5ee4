"""The storefront's session store against real redis-server processes: a Redis
failover must not log anybody out, also once the failed node is back."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest
import redis

from peakready.sandbox import procs
from peakready.sandbox.ports import PortHold
from peakready.sandbox.redisnodes import server_binary
from peakready.sandbox.storefront.sessions import SessionStore

pytestmark = pytest.mark.spawns  # starts redis-server nodes


def _start(port: int, tmp_path, replicaof: int | None = None) -> subprocess.Popen:
    cmd = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--protected-mode", "no", "--dir", str(tmp_path),
           "--dbfilename", f"{port}.rdb", "--repl-diskless-sync", "yes",
           "--repl-diskless-sync-delay", "0", "--loglevel", "warning"]
    if replicaof:
        cmd += ["--replicaof", "127.0.0.1", str(replicaof)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                return proc
        except redis.RedisError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)


def _linked(port: int) -> bool:
    info = redis.Redis(port=port, socket_timeout=0.5).info("replication")
    return info.get("master_link_status") == "up"


def test_reads_follow_the_promoted_primary_not_the_returning_empty_node(tmp_path):
    started: list[subprocess.Popen] = []
    with PortHold() as hold:
        a, b, nowhere = hold.take_many(3)
        try:
            started.append(_start(a, tmp_path))
            started.append(_start(b, tmp_path, replicaof=a))
            assert procs.wait_until(lambda: _linked(b), 10, 0.05)

            async def scenario() -> list:
                store = SessionStore([("127.0.0.1", a), ("127.0.0.1", b)])
                try:
                    sid = await store.create_session("shopper@example.com")
                    replica = redis.Redis(port=b, socket_timeout=0.5)
                    assert procs.wait_until(lambda: replica.exists(f"session:{sid}"), 5)
                    procs.kill(started[0])  # the primary dies
                    seen = [await store.get_session(sid)]  # served by the replica
                    redis.Redis(port=b).execute_command("REPLICAOF", "NO", "ONE")
                    # the failed node comes back as a replica that has not synced yet
                    # (its primary is unreachable here, so it stays empty)
                    started.append(_start(a, tmp_path, replicaof=nowhere))
                    seen += [await store.get_session(sid) for _ in range(5)]
                    return seen
                finally:
                    await store.close()

            seen = asyncio.run(scenario())
        finally:
            for proc in started:
                procs.kill(proc)
    assert [s and s["email"] for s in seen] == ["shopper@example.com"] * 6


def test_data_tier_ports_stay_held_while_a_node_is_down(tmp_path):
    """Another process cannot take a held port (so a node restarts on it after a crash),
    bind(0) never hands it out, and the server itself still binds it."""
    with PortHold() as hold:
        port = hold.take()
        grab = socket.socket()
        with pytest.raises(OSError):
            grab.bind(("127.0.0.1", port))
        grab.close()
        handed = set()
        for _ in range(2000):
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                handed.add(other.getsockname()[1])
        assert port not in handed
        proc = _start(port, tmp_path)
        try:
            assert redis.Redis(port=port).ping()
        finally:
            procs.kill(proc)
