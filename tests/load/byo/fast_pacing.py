"""FastHttpUser with constant_pacing: one task every 2 s per user (closed pacing).
It does not import peakready."""

from locust import FastHttpUser, constant_pacing, task


class Pacer(FastHttpUser):
    wait_time = constant_pacing(2)

    @task
    def listing(self):
        self.client.get("/api/products?category=shoes", name="/api/products")
