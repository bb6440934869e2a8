"""Slow endpoints, sync and async at once: WSGI requests block worker threads (mounted at
/sync) while async ones wait on the loop; neither kind may stall the other."""

from locust import FastHttpUser, task

SLOW_MS = 20


class MixedUser(FastHttpUser):
    @task
    def sync_slow(self) -> None:
        self._get(f"/sync/slow?ms={SLOW_MS}", "/sync/slow (WSGI, thread pool)", b"sync slept %d" % SLOW_MS)

    @task
    def async_slow(self) -> None:
        self._get(f"/slow?ms={SLOW_MS}", "/slow (ASGI, on the loop)", b"async slept %d" % SLOW_MS)

    def _get(self, path: str, name: str, expected: bytes) -> None:
        with self.client.get(path, name=name, catch_response=True) as resp:
            if resp.status_code == 200 and resp.content != expected:
                resp.failure(f"unexpected body {resp.content[:40]!r}")
