"""Modelled on Locust's examples/markov-taskset/store-locustfile.py: a MarkovTaskSet
with wait_time = constant(1) inside an HttpUser. It does not import peakready."""

from locust import HttpUser, MarkovTaskSet, constant, transition, transitions


class StoreBehaviour(MarkovTaskSet):
    wait_time = constant(1)

    @transitions({"browse": 3, "search": 1})
    def home(self):
        self.client.get("/", name="/")

    @transitions([("product", 2), "home"])
    def browse(self):
        self.client.get("/api/products?category=bags", name="/api/products")

    @transition("product")
    def search(self):
        self.client.get("/api/search?q=bag", name="/api/search")

    @transitions({"home": 1, "browse": 1})
    def product(self):
        self.client.get("/api/products/SKU-00007", name="/api/products/[sku]")


class StoreUser(HttpUser):
    tasks = [StoreBehaviour]
