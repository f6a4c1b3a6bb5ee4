"""The sandbox's pure parts: HTTP parsing, storefront config, catalog, worker pool."""

from __future__ import annotations

import asyncio

import pytest

from peakready.sandbox import catalog, http11
from peakready.sandbox.storefront import config
from peakready.sandbox.storefront.workers import WorkerPool


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_request_with_body_cookie_and_query_then_clean_eof():
    async def go():
        raw = (b"POST /api/cart/items?x=1&y=a%20b HTTP/1.1\r\nHost: h\r\n"
               b"Cookie: a=1; session=abc\r\nContent-Length: 13\r\n\r\n"
               b'{"sku": "S1"}')
        reader = _reader(raw)
        req = await http11.read_request(reader)
        assert (req.method, req.path, req.query) == ("POST", "/api/cart/items",
                                                      {"x": "1", "y": "a b"})
        assert req.cookie("session") == "abc" and req.cookie("nope") is None
        assert req.json() == {"sku": "S1"} and req.keep_alive
        assert await http11.read_request(reader) is None

    asyncio.run(go())


def test_malformed_and_chunked_messages_are_protocol_errors():
    async def go():
        with pytest.raises(http11.ProtocolError):
            await http11.read_request(_reader(b"GARBAGE\r\n\r\n"))
        with pytest.raises(http11.ProtocolError):
            await http11.read_request(_reader(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
        resp = await http11.read_response(_reader(
            http11.json_response(409, {"error": "x"}, {"X-Instance-Id": "i-1"})))
        assert resp.status == 409 and resp.headers["x-instance-id"] == "i-1"

    asyncio.run(go())


def test_storefront_config_merges_costs_and_rejects_unknown_keys(monkeypatch):
    monkeypatch.setenv("PEAKREADY_STOREFRONT", '{"workers": 8, "costs_ms": {"search": 90}}')
    cfg = config.load({"costs_ms": {"home": 5}})
    assert cfg.workers == 8 and cfg.costs_ms["search"] == 90 and cfg.costs_ms["home"] == 5
    assert cfg.costs_ms["checkout"] == config.DEFAULT_COSTS_MS["checkout"]
    assert cfg.cost_s("home") == 0.005
    for bad in ({"worker": 2}, {"costs_ms": {"serch": 1}}, {"workers": 0}):
        with pytest.raises(ValueError):
            config.from_dict(bad)


def test_catalog_from_the_repository_and_the_generated_convention(tmp_path):
    rows = catalog.load()
    skus = {r[0] for r in rows}
    assert len(rows) > 2000 and "SKU-00001" in skus
    assert any(r[5] for r in rows) and {r[2] for r in rows} <= set(catalog.CATEGORIES)
    generated = catalog.load(tmp_path / "absent.csv")
    assert len(generated) == 3010 and generated == catalog.generated()
    assert [r[0] for r in generated if r[5]] == [f"SKU-{90000 + i}" for i in range(1, 11)]
    (tmp_path / "bad.csv").write_text("sku,name\nSKU-1,x\n")
    with pytest.raises(ValueError, match="missing columns"):
        catalog.load(tmp_path / "bad.csv")


def test_worker_pool_queues_past_its_workers_and_measures_busy():
    async def go():
        pool = WorkerPool(2)

        async def hold():
            async with pool.slot():
                await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(hold() for _ in range(6)))  # 3 rounds of 2
        took = loop.time() - t0
        assert 0.3 <= took < 0.6
        assert pool.served == 6 and pool.in_use() == 0 and pool.waiting == 0
        assert pool.busy_seconds() == pytest.approx(0.6, abs=0.1)
        assert pool.busy_fraction() > 0.8

    asyncio.run(go())
