"""Uploads (256 KiB bodies, hashed by the app) and streamed 1 MiB downloads (chunked)."""

import hashlib
import os

from locust import FastHttpUser, task

UPLOAD = os.urandom(256 * 1024)
UPLOAD_ANSWER = b"%d %s" % (len(UPLOAD), hashlib.sha256(UPLOAD).hexdigest().encode())
DOWNLOAD_SIZE = 1024 * 1024


class FilesUser(FastHttpUser):
    @task
    def upload(self) -> None:
        with self.client.post("/upload", data=UPLOAD, name="/upload (256 KiB)", catch_response=True) as resp:
            if resp.status_code == 200 and resp.content != UPLOAD_ANSWER:
                resp.failure(f"the server saw a different body: {resp.content[:80]!r}")

    @task
    def download(self) -> None:
        path = f"/download?size={DOWNLOAD_SIZE}"
        with self.client.get(path, name="/download (1 MiB)", catch_response=True) as resp:
            if resp.status_code == 200 and len(resp.content) != DOWNLOAD_SIZE:
                resp.failure(f"got {len(resp.content)} bytes of {DOWNLOAD_SIZE}")
