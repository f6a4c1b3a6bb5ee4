"""The storefront API through the balancer, on a real sandbox (PostgreSQL, Redis)."""

from __future__ import annotations

import requests


def test_every_response_names_its_instance_and_health_is_200(stack, base_url):
    seen = set()
    for _ in range(6):
        resp = requests.get(f"{base_url}/health", timeout=5)
        assert resp.status_code == 200
        seen.add(resp.headers["X-Instance-Id"])
    assert seen == {i["id"] for i in stack.instances()}  # round robin reaches both
    assert requests.get(f"{base_url}/nope", timeout=5).headers["X-Instance-Id"] in seen


def test_catalog_browse_detail_and_full_text_search(base_url):
    home = requests.get(f"{base_url}/", timeout=5).json()
    assert any(p["flash_sale"] for p in home["featured"])
    page = requests.get(f"{base_url}/api/products", params={"category": "boots", "page": 2},
                        timeout=5).json()
    assert len(page["items"]) == 20 and {p["category"] for p in page["items"]} == {"boots"}
    sku = page["items"][0]["sku"]
    detail = requests.get(f"{base_url}/api/products/{sku}", timeout=5).json()
    assert detail["sku"] == sku and detail["stock"] >= 0
    assert requests.get(f"{base_url}/api/products/SKU-99999", timeout=5).status_code == 404
    name_word = detail["name"].split()[-1]
    hits = requests.get(f"{base_url}/api/search", params={"q": name_word}, timeout=5).json()
    assert hits["items"] and all(name_word in (p["name"] + " " + p["category"])
                                 for p in hits["items"])
    assert requests.get(f"{base_url}/api/search", timeout=5).status_code == 400


def test_cart_and_checkout_need_a_session(base_url):
    for method, path in (("GET", "/api/cart"), ("POST", "/api/cart/items"),
                         ("POST", "/api/checkout")):
        resp = requests.request(method, base_url + path, json={"sku": "SKU-00001", "qty": 1},
                                timeout=5)
        assert resp.status_code == 401 and resp.json() == {"error": "no session"}


def test_login_cart_checkout_places_one_order_and_decrements_stock(base_url):
    s = requests.Session()
    assert s.post(f"{base_url}/api/login", json={"email": "ana@example.com"},
                  timeout=5).status_code == 200
    assert "session" in s.cookies
    before = requests.get(f"{base_url}/api/products/SKU-00010", timeout=5).json()["stock"]
    cart = s.post(f"{base_url}/api/cart/items", json={"sku": "SKU-00010", "qty": 2},
                  timeout=5).json()
    assert cart == {"items": [{"sku": "SKU-00010", "qty": 2}], "count": 2}
    assert s.get(f"{base_url}/api/cart", timeout=5).json()["count"] == 2
    order = s.post(f"{base_url}/api/checkout", timeout=5)
    assert order.status_code == 200, order.text
    order_id = order.json()["order_id"]
    after = requests.get(f"{base_url}/api/products/SKU-00010", timeout=5).json()["stock"]
    assert after == before - 2
    found = requests.get(f"{base_url}/api/orders/{order_id}", timeout=5).json()
    assert found["email"] == "ana@example.com"
    assert found["lines"] == [{"sku": "SKU-00010", "qty": 2, "price": found["lines"][0]["price"]}]
    assert s.get(f"{base_url}/api/cart", timeout=5).json()["count"] == 0  # cart emptied
    assert requests.get(f"{base_url}/api/orders/does-not-exist", timeout=5).status_code == 404


def test_out_of_stock_checkout_is_409_and_changes_nothing(base_url):
    flash = "SKU-90003"
    stock = requests.get(f"{base_url}/api/products/{flash}", timeout=5).json()["stock"]
    s = requests.Session()
    s.post(f"{base_url}/api/login", json={"email": "bo@example.com"}, timeout=5)
    s.post(f"{base_url}/api/cart/items", json={"sku": "SKU-00020", "qty": 1}, timeout=5)
    s.post(f"{base_url}/api/cart/items", json={"sku": flash, "qty": stock + 1}, timeout=5)
    other_before = requests.get(f"{base_url}/api/products/SKU-00020", timeout=5).json()["stock"]
    resp = s.post(f"{base_url}/api/checkout", timeout=5)
    assert resp.status_code == 409 and flash in resp.json()["error"]
    assert requests.get(f"{base_url}/api/products/{flash}", timeout=5).json()["stock"] == stock
    # the whole transaction rolled back, not only the failing line
    assert requests.get(f"{base_url}/api/products/SKU-00020",
                        timeout=5).json()["stock"] == other_before


def test_bad_input_is_400_not_500(base_url):
    s = requests.Session()
    assert s.post(f"{base_url}/api/login", json={}, timeout=5).status_code == 400
    assert s.post(f"{base_url}/api/login", data=b"{not json", timeout=5).status_code == 400
    s.post(f"{base_url}/api/login", json={"email": "cy@example.com"}, timeout=5)
    assert s.post(f"{base_url}/api/cart/items", json={"sku": "SKU-00001", "qty": 0},
                  timeout=5).status_code == 400
    assert s.post(f"{base_url}/api/cart/items", json={"sku": "SKU-99999", "qty": 1},
                  timeout=5).status_code == 404
    assert s.post(f"{base_url}/api/checkout", timeout=5).status_code == 400  # empty cart
    assert requests.get(f"{base_url}/api/products", params={"page": "x"},
                        timeout=5).status_code == 400


def test_status_describes_every_component(stack):
    st = stack.status()
    kinds = [(c["kind"], c["role"]) for c in st["components"]]
    assert kinds.count(("storefront", "web")) == 2
    assert ("loadbalancer", "alb") in kinds
    assert ("postgres", "writer") in kinds and ("postgres", "reader") in kinds
    assert ("redis", "primary") in kinds and ("redis", "replica") in kinds
    assert all(c["health"] == "healthy" and c["pid"] and c["port"] for c in st["components"])
    assert st["resources"]["db_instances"] == ["peakready-db-1", "peakready-db-2"]
    stats = stack.db_stats()
    writer = stats["nodes"][stats["writer"]]
    assert writer["replicas"][0]["sync_state"] == "sync"  # a commit waits for the standby
    assert stack.cache_stats()["nodes"]["peakready-sessions-002"]["link_status"] == "up"
