"""The FastAPI JSON endpoint of the benchmark (``GET /json``)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def json_endpoint() -> dict:
    return {"message": "Hello, world!"}
