"""The sandbox search domain on real node processes: the storefront's client speaks to it,
a node restart turns it yellow and back to green while searches keep answering, and a
pool too small for the load answers 429 in OpenSearch's error shape."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from peakready.sandbox import catalog
from peakready.sandbox.ports import PortHold
from peakready.sandbox.procs import Spawner
from peakready.sandbox.search.config import from_dict
from peakready.sandbox.search.group import SearchDomain

QUERY = {"size": 5, "query": {"bool": {
    "must": [{"multi_match": {"query": "black boots", "fields": ["name^2", "category"]}}],
    "filter": [{"range": {"price": {"lte": 100}}}]}}}


@contextmanager
def domain(tmp_path, **cfg):
    ports, spawner = PortHold(), Spawner()
    events: list[tuple[str, dict]] = []
    group = SearchDomain(from_dict(cfg), ports.take_many(cfg.get("nodes", 3)),
                         tmp_path / "search", spawner, tmp_path / "logs",
                         on_event=lambda kind, detail: events.append((kind, detail)))
    try:
        group.start(catalog.load())
        yield group, OpenSearch(hosts=[group.url], timeout=5), events
    finally:
        group.stop()
        spawner.shutdown()
        ports.release()


@pytest.mark.spawns
def test_opensearch_py_search_bulk_health_and_node_restart(tmp_path):
    with domain(tmp_path, restart_s=0.3, recovery_s=1.0) as (group, client, events):
        rows = catalog.load()
        answer = client.search(index="products", body=QUERY)
        assert answer["_shards"] == {"total": 3, "successful": 3, "skipped": 0, "failed": 0}
        hits = answer["hits"]["hits"]
        assert hits and all(h["_source"]["price"] <= 100 for h in hits)
        assert all("black" in h["_source"]["name"] or h["_source"]["category"] == "boots"
                   for h in hits)
        assert answer["hits"]["total"]["value"] < len(rows)
        assert client.cluster.health()["status"] == "green"
        assert len(client.cat.nodes(format="json")) == 3
        client.bulk(body=[{"index": {"_index": "products", "_id": "SKU-TEST"}},
                          {"sku": "SKU-TEST", "name": "zebra moonboot", "category": "boots",
                           "price": 10, "stock": 1}])
        found = client.search(index="products", body={"query": {"match": {"name": "zebra"}}})
        assert [h["_id"] for h in found["hits"]["hits"]] == ["SKU-TEST"]

        group.maintain("peakready-search-node-2", "RESTART_SEARCH_PROCESS")
        seen, deadline = [], time.monotonic() + 15
        while time.monotonic() < deadline:
            status = client.cluster.health()["status"]
            answer = client.search(index="products", body=QUERY)  # keeps answering
            assert answer["_shards"]["successful"] == 3
            seen.append(status)
            if "yellow" in seen and status == "green":
                break
            time.sleep(0.1)
        assert "yellow" in seen and seen[-1] == "green", seen
        assert ("search_node_maintenance_end" in [k for k, _ in events])
        # the restarted node kept its copies on disk: the new document is still found
        assert client.search(index="products", body={"query": {"match": {"name": "zebra"}}},
                             preference="_local")["hits"]["total"]["value"] == 1


@pytest.mark.spawns
def test_a_pool_too_small_rejects_with_429_in_opensearch_shape(tmp_path):
    with domain(tmp_path, nodes=1, replicas=0, shards=1, queue_size=1,
                query_cost_ms=100) as (group, client, _):
        def one(_):
            try:
                client.search(index="products", body=QUERY)
                return 200, None
            except TransportError as exc:
                return exc.status_code, exc.info

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        statuses = [s for s, _ in results]
        assert statuses.count(200) >= 2 and 429 in statuses, statuses
        info = next(i for s, i in results if s == 429)
        assert info["status"] == 429
        cause = info["error"]["failed_shards"][0]["reason"]
        assert cause["type"] == "es_rejected_execution_exception"
        assert "queue capacity = 1" in cause["reason"]
        stats = group.stats()
        assert sum(n["thread_pool"]["search"]["rejected"]
                   for n in stats["nodes"].values()) >= 1 or stats["counters"]["rejected"] >= 1


def test_bad_search_config_names_the_field():
    with pytest.raises(ValueError, match="queue_size"):
        from_dict({"queue_size": -1})
    with pytest.raises(ValueError, match="replicas"):
        from_dict({"nodes": 2, "replicas": 2})
