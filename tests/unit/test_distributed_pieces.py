"""The pieces of distributed load that need no process: a lost worker's arrivals split
among the survivors (exactly, once each), where a remote worker's files may land, what a
shard that never arrived looks like to analysis, the master's address."""

from __future__ import annotations

import pytest

from peakready.errors import BadInput
from peakready.load.bundle import unpack
from peakready.load.settings import LoadSettings, master_address
from peakready.profiles import arrival_times, load_profile
from peakready.runfolder_schema import shipping_gaps


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("t_s,rps\n0,10\n10,50\n30,50\n")
    return load_profile(path)


@pytest.mark.parametrize("worker, workers, from_s", [(0, 1, 5.3), (1, 3, 12.7), (2, 3, 0.0),
                                                     (0, 2, 29.99), (1, 4, 31.0)])
def test_arrivals_from_an_offset_are_the_tail_of_the_whole_schedule(profile, worker, workers,
                                                                     from_s):
    whole = [t for t in arrival_times(profile, worker, workers) if t >= from_s]
    assert list(arrival_times(profile, worker, workers, from_s=from_s)) == whole


def test_a_lost_workers_arrivals_are_sent_once_by_the_survivors_even_when_one_is_lost_too(
        profile):
    pytest.importorskip("gevent")
    from peakready.load.distributed import stream

    lost = [t for t in arrival_times(profile, 1, 3) if t >= 8.0]
    # w1 lost at 8 s: w0 and w2 share it; w2 lost at 15 s: w0 takes w2's part of it too
    w0 = list(stream(profile, 1, 3, [[8.0, 0, 2]]))
    w2_part = [[8.0, 1, 2]]
    w2_before = [t for t in stream(profile, 1, 3, w2_part) if t < 15.0]
    w0_after = list(stream(profile, 1, 3, [*w2_part, [15.0, 0, 1]]))
    assert sorted(w0 + w2_before + w0_after) == lost
    assert len(set(w0) & set(w0_after)) == 0


def test_shards_announced_but_not_arrived_make_the_run_incomplete():
    manifest = {"workers": {
        "w0": {"name": "host-a", "done": True, "files": {
            "samples/w0-00001.parquet": {"rows": 10, "bytes": 900, "received": True}}},
        "w1": {"name": "host-b", "done": False, "files": {
            "samples/w1-00001.parquet": {"rows": 10, "bytes": 900, "received": True},
            "samples/w1-00002.parquet": {"rows": 42, "bytes": 1200, "received": False}}},
        "w2": {"name": "host-c", "done": False, "files": {}}}}
    gaps = shipping_gaps(manifest)
    assert len(gaps) == 2
    assert "worker w1 (host-b)" in gaps[0] and "42 sample rows" in gaps[0]
    assert "w1-00002.parquet" in gaps[0]
    assert "worker w2 (host-c) never confirmed" in gaps[1]
    assert shipping_gaps(None) == [] and shipping_gaps({"workers": {}}) == []


@pytest.mark.parametrize("name", ["../evil.py", "/etc/passwd", "a/../../b"])
def test_a_master_cannot_write_outside_the_workers_folder(tmp_path, name):
    data = {"files": {name: b"x"}, "locustfile": "x.py", "profile": b""}
    with pytest.raises(BadInput, match="outside the bundle"):
        unpack(data, tmp_path / "work")


@pytest.mark.parametrize("bind, external, want", [
    ("", False, ("127.0.0.1", None)), ("", True, ("127.0.0.1", 5557)),
    ("10.0.0.1:6000", False, ("10.0.0.1", 6000)), ("0.0.0.0", True, ("0.0.0.0", 5557))])
def test_master_address(bind, external, want):
    settings = LoadSettings(host="http://x", profile="p.csv", master_bind=bind,
                            external_workers=external)
    assert master_address(settings) == want


@pytest.mark.parametrize("bind", ["10.0.0.1:99999", ":5557", "10.0.0.1:abc"])
def test_a_bad_master_address_is_one_line(bind):
    with pytest.raises(BadInput, match="--master-bind"):
        master_address(LoadSettings(host="http://x", profile="p.csv", master_bind=bind))


class _Msg:
    def __init__(self, data, node_id="client-1"):
        self.data, self.node_id = data, node_id


def test_shipping_a_multi_chunk_shard_and_order_lines_rebuilds_them_exactly(tmp_path):
    pytest.importorskip("gevent")
    from peakready.load import shipping

    run_dir, spool = tmp_path / "run", tmp_path / "spool"
    (spool / "samples").mkdir(parents=True)
    (spool / "orders").mkdir()
    shard = spool / "samples" / "w1-00001.parquet"
    content = bytes(range(256)) * 5000  # 1.25 MB: five chunks, more than one window
    shard.write_bytes(content)
    orders = spool / "orders" / "w1.jsonl"
    orders.write_text('{"order_id": "o1"}\n{"order_id": "o2"}\n{"order_id": "o3')  # torn
    sent = []

    def to_master(kind, data):
        sent.append(kind)
        {shipping.MSG_ANNOUNCE: receiver.on_announce, shipping.MSG_CHUNK: receiver.on_chunk,
         shipping.MSG_DONE: receiver.on_done}[kind](_Msg(data))

    receiver = shipping.Receiver(run_dir, lambda kind, data, client_id: shipper.on_ack(
        _Msg(data)))
    shipper = shipping.Shipper(to_master, "w1", spool, orders)
    shipper.closed(shard, rows=123)
    shipper.drain()
    assert (run_dir / "samples" / "w1-00001.parquet").read_bytes() == content
    assert not shard.exists()  # arrived: the spool copy is gone
    assert (run_dir / "orders" / "w1.jsonl").read_text().count("\n") == 2  # whole lines only
    assert sent.count(shipping.MSG_CHUNK) == 6
    receiver.save()
    files = receiver.workers["w1"]["files"]
    assert files["samples/w1-00001.parquet"] == {"rows": 123, "bytes": len(content),
                                                 "received": True}
    # a worker cannot write another worker's files or anything else
    receiver.on_chunk(_Msg({"worker": "w1", "file": "samples/w2-00001.parquet", "off": 0,
                            "data": b"x", "size": 1}))
    receiver.on_chunk(_Msg({"worker": "w1", "file": "../run.json", "off": 0, "data": b"x",
                            "size": 1}))
    assert not (run_dir / "samples" / "w2-00001.parquet").exists()
    assert not (tmp_path / "run.json").exists()
