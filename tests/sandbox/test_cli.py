"""`peakready sandbox up | status | down` through the real daemon."""

from __future__ import annotations

import json
import socket
import threading
import time

import psutil
import pytest

from peakready import sandbox
from peakready.cli import main
from peakready.sandbox.control import SandboxError, daemon_pid
from peakready.sandbox.timing import Timing

QUICK = Timing(boot_delay_s=0.5, health_interval_s=0.25, healthy_threshold=2)


def _listening(ports: list[int]) -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port in ports}


def _is_daemon_of(proc: psutil.Process, state) -> bool:
    try:
        return "peakready.sandbox.daemon" in proc.cmdline() and str(state) in proc.cmdline()
    except psutil.Error:
        return False


@pytest.mark.spawns
def test_up_status_down_leaves_no_process_no_port_no_folder(tmp_path, capsys, monkeypatch):
    state = tmp_path / "sbx"
    monkeypatch.setenv("PEAKREADY_TIMING", json.dumps({"boot_delay_s": 0.5,
                                                       "health_interval_s": 0.25}))
    try:
        assert main(["sandbox", "up", "--state-dir", str(state), "--port", "0"]) == 0
        out = capsys.readouterr().out
        assert "sandbox ready in" in out and "storefront  http://127.0.0.1:" in out
        float(out.split("sandbox ready in ")[1].split(" s")[0])  # the time is printed

        assert main(["sandbox", "status", "--json", "--state-dir", str(state)]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["state"] == "running" and st["state_dir"] == str(state)
        assert st["storefront_url"].startswith("http://127.0.0.1:")
        assert st["resources"]["target_group"] == "peakready-web-tg"
        kinds = sorted(c["kind"] for c in st["components"])
        assert kinds == ["loadbalancer", "postgres", "postgres", "redis", "redis",
                         "search-domain", "search-node", "search-node", "search-node",
                         "storefront", "storefront"]
        assert all(c["health"] == "healthy" for c in st["components"])
        pids = [st["pid"]] + [c["pid"] for c in st["components"]]
        ports = [c["port"] for c in st["components"]]
        assert all(psutil.pid_exists(p) for p in pids)
        assert _listening(ports) == set(ports)

        assert main(["sandbox", "up", "--state-dir", str(state), "--port", "0"]) == 0
        assert "already running" in capsys.readouterr().out
    finally:
        assert main(["sandbox", "down", "--state-dir", str(state)]) == 0
    assert "sandbox stopped" in capsys.readouterr().out
    assert not state.exists()
    alive = [p for p in pids if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert _listening(ports) == set()
    assert main(["sandbox", "status", "--state-dir", str(state)]) == 1
    assert "stopped" in capsys.readouterr().out


@pytest.mark.spawns
def test_taken_port_falls_back_and_says_so(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with sandbox.running(tmp_path / "sbx", instances=1, lb_port=taken, timing=QUICK) as st:
            assert st["storefront_url"] != f"http://127.0.0.1:{taken}"
            assert f"port {taken} is taken" in st["note"]
            assert sandbox.status(tmp_path / "sbx")["state"] == "running"
    assert sandbox.status(tmp_path / "sbx")["state"] == "stopped"


@pytest.mark.parametrize("argv", [["--instances", "-1"], ["--port", "70000"]])
def test_bad_input_exits_2_and_starts_nothing(tmp_path, capsys, argv):
    state = tmp_path / "sbx"
    assert main(["sandbox", "up", "--state-dir", str(state), *argv]) == 2
    assert "peakready: error:" in capsys.readouterr().err
    assert not state.exists()


def test_a_foreign_folder_is_never_used_or_removed(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["sandbox", "up", "--state-dir", str(tmp_path)]) == 2
    assert "is not a sandbox's" in capsys.readouterr().err
    assert main(["sandbox", "down", "--state-dir", str(tmp_path)]) == 0
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.spawns
def test_a_start_that_does_not_finish_stops_everything_and_keeps_the_logs(tmp_path):
    state = tmp_path / "sbx"
    pids: list[int] = []

    def watch() -> None:  # remember the daemon and its children while it starts
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            # the daemon is our child from its spawn on (daemon.pid comes later: on a
            # loaded machine, after the 1 s timeout)
            pid = daemon_pid(state) or next(
                (c.pid for c in psutil.Process().children() if _is_daemon_of(c, state)), None)
            if pid and psutil.pid_exists(pid):
                try:
                    seen = [pid] + [c.pid for c in psutil.Process(pid).children(True)]
                    pids[:] = sorted(set(pids) | set(seen))
                except psutil.Error:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with pytest.raises(SandboxError, match="not ready after"):
        sandbox.start(state, timing=QUICK, timeout=1.0)
    watcher.join()
    assert pids, "the daemon had started"
    assert not [p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert (state / "logs" / "daemon.log").exists()  # the evidence stays
    assert sandbox.status(state)["state"] == "stopped"
    sandbox.stop(state)
    assert not state.exists()
