"""A closed-model Locust user (fixed users, think time), for comparison with the open
model in test_load_open_model (run with closed_model=True; peakready's plugin, loaded next
to it, records its samples)."""

from locust import FastHttpUser, constant, task


class ClosedShopper(FastHttpUser):
    wait_time = constant(0.5)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/[sku]")
