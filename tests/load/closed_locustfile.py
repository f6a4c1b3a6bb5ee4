"""A closed-model Locust user (fixed users, think time), for comparison with the open
model in test_load_open_model. It records samples through peakready's capture too."""

from locust import FastHttpUser, constant, task

import peakready.load.openmodel  # noqa: F401  (sample capture and live.json; no shape)


class ClosedShopper(FastHttpUser):
    wait_time = constant(0.5)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/[sku]")
