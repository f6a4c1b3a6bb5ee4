"""Master and workers on separate hosts (network namespaces; loopback when not root):
`peakready load --external-workers` in the master's namespace with the storefront,
`peakready worker --master HOST:PORT` in each worker's, each with its own folder. Every
sample reaches the master's run folder; a worker that never comes is named (exit 2); a
worker killed mid-run has its arrivals taken over."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from loadkit import start_shop, stop_shop, wait_for, write_profile
from testhosts import hosts

from analysis.load import load_run
from peakready import runfolder
from peakready.load.summary import read_samples

pytestmark = pytest.mark.spawns
PORT = 5557


@pytest.fixture
def procs():
    """Processes a test starts (and their children: Locust runs in its own session)."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the CLI stops its Locust master cleanly
        for proc in started:
            try:
                tree = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                tree = []
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for child in tree:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass


def _master(h, tmp: Path, shop_url: str, profile: Path, workers: int, port: int,
            wait_s: float = 60) -> subprocess.Popen:
    cmd = [*h.prefix("master"), sys.executable, "-m", "peakready.cli", "load",
           "--profile", str(profile), "--host", shop_url, "--workers", str(workers),
           "--external-workers", "--master-bind", f"{h.master_ip}:{port}",
           "--worker-wait", f"{wait_s:g}", "--locust-arg=--think-scale=0",
           "--reports-dir", str(tmp / "reports")]
    (tmp / "master").mkdir(exist_ok=True)
    return subprocess.Popen(cmd, cwd=tmp / "master", stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _worker(h, tmp: Path, i: int, port: int) -> subprocess.Popen:
    home = tmp / f"host-w{i}"  # this host's own disk
    home.mkdir(exist_ok=True)
    cmd = [*h.prefix(f"w{i}"), sys.executable, "-m", "peakready.cli", "worker",
           "--master", f"{h.master_ip}:{port}", "--workdir", str(home / "work"),
           "--name", f"host-w{i}"]
    out = (home / "worker.out").open("w")
    return subprocess.Popen(cmd, cwd=home, stdout=out, stderr=subprocess.STDOUT)


def _port(h) -> int:
    if h.isolated:
        return PORT  # the master's namespace is its own: Locust's default port is free
    from peakready.load.process import free_port

    return free_port()


def _run_dir(tmp: Path) -> Path:
    return wait_for(lambda: next((tmp / "reports").glob("*/run.json"), None), 60).parent


@pytest.mark.slow  # ~35 s here: six Locust-importing processes start on two shared cores
def test_workers_on_other_hosts_send_every_sample(tmp_path, procs):
    with hosts(2) as h:
        print(f"hosts: {h.reason}")
        shop = start_shop(h.master_ip, h.prefix("master"))
        try:
            profile = write_profile(tmp_path / "p.csv", [(0, 30), (6, 30)])  # 180 arrivals
            port = _port(h)
            master = _master(h, tmp_path, shop.url, profile, 2, port)
            procs.append(master)
            procs.extend(_worker(h, tmp_path, i, port) for i in range(2))
            out, err = master.communicate(timeout=120)
            assert master.returncode == 0, err
            stats = h.get_json(shop.url + "/_admin/stats")
            served = stats["requests"] - stats["health_checks"]  # less the pre-flight check
        finally:
            stop_shop(shop)
    run_dir = _run_dir(tmp_path)
    samples = read_samples(run_dir)
    # the storefront's own count: every request it served has its sample in the run folder
    assert len(samples) == served == 180
    assert set(samples["worker"]) == {"w0", "w1"}
    shipped = json.loads((run_dir / runfolder.SHIPPED).read_text())["workers"]
    assert {w["name"] for w in shipped.values()} == {"host-w0", "host-w1"}
    for info in shipped.values():
        assert info["done"] and all(f["received"] for f in info["files"].values())
        assert sum(f["rows"] or 0 for f in info["files"].values()) > 0
    assert not (run_dir / runfolder.SPOOL_DIR).exists()  # nothing written there by workers
    for i in range(2):  # each host fetched the files and spooled its own shards
        work = tmp_path / f"host-w{i}" / "work"
        assert (work / "files" / "storefront.py").exists()
        assert (work / "files" / "data" / "catalog.csv").exists()
        assert list((work / "spool" / "samples").glob("*.parquet")) == []  # all shipped
    run = runfolder.read_run_json(run_dir)
    assert sorted(run["load"]["workers"].values()) == ["host-w0", "host-w1"]
    assert run["master"]["bind"] == f"{h.master_ip}:{port}"
    assert not [p for p in load_run(run_dir).problems if "arrived" in p or "worker" in p]
    assert "orders" in out or out  # the summary printed


def test_a_worker_that_never_comes_is_named_exit_2(tmp_path, procs):
    with hosts(2) as h:
        shop = start_shop(h.master_ip, h.prefix("master"))
        try:
            profile = write_profile(tmp_path / "p.csv", [(0, 10), (5, 10)])
            port = _port(h)
            master = _master(h, tmp_path, shop.url, profile, 2, port, wait_s=20)
            procs.append(master)
            procs.append(_worker(h, tmp_path, 0, port))
            _out, err = master.communicate(timeout=90)
            stats = h.get_json(shop.url + "/_admin/stats")
            served = stats["requests"] - stats["health_checks"]  # less the pre-flight check
        finally:
            stop_shop(shop)
    assert master.returncode == 2
    line = err.strip().splitlines()[-1]
    assert "waited 20 s for 2 worker(s)" in line and "1 connected (host-w0)" in line
    assert "1 missing" in line and f"peakready worker --master {h.master_ip}:{port}" in line
    assert served == 0  # nothing was sent


@pytest.mark.slow  # ~60 s: three workers, 20 s of load, Locust's ~4 s to call one missing
def test_lost_worker_arrivals_are_taken_over(tmp_path, procs):
    """Of three workers, one is killed and one frozen (SIGSTOP) mid-run: within a few
    seconds of Locust marking them missing the last one sends their arrivals; the frozen
    one, back, is retired and does not send its share twice; the gap is in the samples
    and in run.json."""
    rate, length = 30, 20
    with hosts(3) as h:
        shop = start_shop(h.master_ip, h.prefix("master"))
        try:
            profile = write_profile(tmp_path / "p.csv", [(0, rate), (length, rate)])
            port = _port(h)
            master = _master(h, tmp_path, shop.url, profile, 3, port)
            procs.append(master)
            workers = [_worker(h, tmp_path, i, port) for i in range(3)]
            procs.extend(workers)
            run_dir = _run_dir(tmp_path)
            status_file = run_dir / runfolder.WORKERS_STATUS
            t0 = wait_for(lambda: (runfolder.read_json(status_file) or {}).get("t0"), 60)
            wait_for(lambda: time.time() - t0 > 4, 30)
            labels = {w["name"]: k for k, w in
                      runfolder.read_json(status_file)["assigned"].items()}
            workers[1].kill()
            workers[2].send_signal(signal.SIGSTOP)
            cut_at = time.time() - t0
            wait_for(lambda: len(runfolder.read_json(status_file)["takeovers"]) == 2, 30)
            time.sleep(1.5)  # the frozen worker's arrivals are being sent by the last one
            workers[2].send_signal(signal.SIGCONT)
            _out, err = master.communicate(timeout=120)
            assert master.returncode == 0, err
        finally:
            stop_shop(shop)
    run = runfolder.read_run_json(run_dir)
    takeovers = {t["name"]: t for t in run["load"]["takeovers"]}
    assert set(takeovers) == {"host-w1", "host-w2"}
    last = max(takeovers.values(), key=lambda t: t["missing_at"])
    assert last["to"] == [labels["host-w0"]]  # the first one's share was passed on too
    assert "returned_at" in takeovers["host-w2"] and "returned_at" not in takeovers["host-w1"]
    taken_at = max(t["from_offset_s"] for t in takeovers.values())
    assert cut_at < taken_at < cut_at + 8  # Locust marks missing after ~4 s
    samples = read_samples(run_dir)
    assert samples["request_id"].is_unique
    offset = samples["intended_ts"] - t0
    after = offset[(offset >= taken_at + 1) & (offset < length)]
    span = length - (taken_at + 1)
    # offered after the takeover: the whole profile rate again (within 5 %), not more
    assert abs(len(after) / span - rate) <= 0.05 * rate, (len(after), span)
    per_second = offset[offset >= 0].astype(int).value_counts()
    assert per_second.max() <= rate * 1.1  # the frozen worker did not catch up on its share
    assert len(samples) <= rate * length
    gap = offset[(offset >= cut_at + 0.5) & (offset < taken_at - 0.5)]
    assert len(gap) / (taken_at - cut_at - 1) < rate * 0.8  # the gap shows
    problems = load_run(run_dir).problems
    killed = labels["host-w1"]
    assert any(killed in p and "host-w1" in p for p in problems)  # its last seconds
