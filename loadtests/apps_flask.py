"""The Flask JSON endpoint of the benchmark (``GET /json``)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/json")
def json_endpoint() -> dict:
    return {"message": "Hello, world!"}
