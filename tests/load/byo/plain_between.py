"""A plain Locust file as a team would have it: HttpUser, between() think time,
weighted tasks, catch_response. It does not import peakready."""

from locust import HttpUser, between, task


class Browser(HttpUser):
    wait_time = between(1, 3)

    @task(3)
    def product(self):
        self.client.get("/api/products/SKU-00042", name="/api/products/[sku]")

    @task(1)
    def search(self):
        with self.client.get("/api/search?q=shoe", name="/api/search",
                             catch_response=True) as resp:
            if "items" not in resp.json():
                resp.failure("no items")
