"""Apps for the production tests (workers, TLS, proxies, CORS), loaded by import string in
subprocesses or passed directly to in-process servers.

``info`` answers with JSON describing the request as the app saw it, and which process
served it; ``?sleep=S`` makes it wait first, and prints ``entered <pid>`` when it starts;
``?until=PATH`` does the same but waits until the file PATH exists (a request the test holds
in flight as long as it needs); ``?block=S`` blocks the event loop for S seconds. Its lifespan
startup takes ``$TEST_STARTUP_DELAY`` seconds, and hangs while the file ``$TEST_STARTUP_HOLD``
exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import parse_qs


async def info(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":  # a slow start, to widen a test's window
                await asyncio.sleep(float(os.environ.get("TEST_STARTUP_DELAY", "0")))
                hold = os.environ.get("TEST_STARTUP_HOLD")
                while hold and os.path.exists(hold):  # a start-up that hangs while the file exists
                    await asyncio.sleep(0.05)
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    query = parse_qs(scope["query_string"].decode())
    if "sleep" in query:
        print("entered", os.getpid(), flush=True)
        await asyncio.sleep(float(query["sleep"][0]))
    if "until" in query:
        print("entered", os.getpid(), flush=True)
        while not os.path.exists(query["until"][0]):
            await asyncio.sleep(0.01)
    if "block" in query:  # a misbehaving app that blocks the event loop
        print("blocking", os.getpid(), flush=True)
        time.sleep(float(query["block"][0]))
    body = json.dumps(
        {
            "pid": os.getpid(),
            "scheme": scope["scheme"],
            "client": list(scope["client"]) if scope["client"] else None,
            "path": scope["path"],
            "env": os.environ.get("TREADLE_TEST_VALUE"),
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def broken_startup(scope, receive, send):
    """A lifespan startup that fails: the worker never becomes ready."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})
