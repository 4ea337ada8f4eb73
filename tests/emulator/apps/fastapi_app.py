"""A real FastAPI app deployed as a revision (run with ``python -m uvicorn fastapi_app:app``)."""

from __future__ import annotations

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "revision": os.environ.get("K_REVISION", "")}


@app.get("/config")
def config() -> dict[str, object]:
    secret = os.environ.get("API_TOKEN", "")
    # the test secret's length only: a revision never echoes a secret
    return {"greeting": os.environ.get("GREETING"), "token_length": len(secret)}
