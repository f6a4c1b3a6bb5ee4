"""A SequentialTaskSet journey with a login in on_start and a checkout whose order id is
in the JSON response; think time on the TaskSet. It does not import peakready (orders
are recognised by peakready's order rule: request 'POST /api/checkout', field order_id)."""

import random

from locust import HttpUser, SequentialTaskSet, between, task


class Checkout(SequentialTaskSet):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.post("/api/login", json={"email": "shopper@example.test"},
                         name="/api/login")

    @task
    def product(self):
        self.sku = f"SKU-{random.randint(1, 3000):05d}"
        self.client.get(f"/api/products/{self.sku}", name="/api/products/[sku]")

    @task
    def add(self):
        self.client.post("/api/cart/items", json={"sku": self.sku, "qty": 1},
                         name="/api/cart/items")

    @task
    def checkout(self):
        with self.client.post("/api/checkout", json={}, name="/api/checkout",
                              catch_response=True) as resp:
            if resp.status_code == 409:
                resp.success()  # sold out is a business outcome


class Shopper(HttpUser):
    tasks = [Checkout]
    wait_time = between(5, 10)  # shadowed by the TaskSet's own wait_time
