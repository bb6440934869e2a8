"""A JSON API on FastAPI: path parameters, validation and serialisation on every request."""

import random

from locust import FastHttpUser, task


class JsonApiUser(FastHttpUser):
    @task(3)
    def read_item(self) -> None:
        item_id = random.randint(1, 10_000)
        with self.client.get(f"/items/{item_id}", name="/items/{id}", catch_response=True) as resp:
            if resp.status_code == 200 and resp.json().get("id") != item_id:
                resp.failure(f"asked for item {item_id}, got {resp.text[:80]}")

    @task(1)
    def create_item(self) -> None:
        item = {"name": "widget", "price": 2.5, "tags": ["x", "y"]}
        with self.client.post("/items", json=item, name="/items", catch_response=True) as resp:
            if resp.status_code == 200 and resp.json() != {"name": "widget", "total": 5.0}:
                resp.failure(f"unexpected body {resp.text[:80]}")
