"""Plaintext: the smallest request and response, to measure the server's own overhead."""

from locust import FastHttpUser, task


class PlaintextUser(FastHttpUser):
    @task
    def hello(self) -> None:
        with self.client.get("/", catch_response=True) as resp:
            if resp.status_code == 200 and resp.content != b"Hello, World!":
                resp.failure(f"unexpected body {resp.content[:40]!r}")
