"""Cloud Run-shaped log entries written to the emulator through the Logging API's
``entries:write`` (as Cloud Run writes them on Google): request-log entries, container
output, Cloud Run's system lines."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx

_ids = itertools.count(1)


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Entries:
    """Builds and writes entries of one project."""

    def __init__(self, endpoint: str, project: str) -> None:
        self.endpoint = endpoint
        self.project = project

    def _base(
        self, log: str, service: str, revision: str, at: float, severity: str
    ) -> dict[str, Any]:
        return {
            "logName": f"projects/{self.project}/logs/{log.replace('/', '%2F')}",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {
                    "project_id": self.project,
                    "service_name": service,
                    "revision_name": revision,
                    "location": "us-central1",
                    "configuration_name": service,
                },
            },
            "timestamp": stamp(at),
            "severity": severity,
            "insertId": f"e{next(_ids):06d}",
        }

    def request(
        self, service: str, revision: str, at: float, status: int, url: str
    ) -> dict[str, Any]:
        entry = self._base("run.googleapis.com/requests", service, revision, at, "INFO")
        entry["httpRequest"] = {
            "requestMethod": "GET",
            "requestUrl": url,
            "status": status,
            "latency": "0.010s",
        }
        return entry

    def line(
        self,
        service: str,
        revision: str,
        at: float,
        text: str,
        *,
        log: str = "run.googleapis.com/stderr",
        severity: str = "ERROR",
    ) -> dict[str, Any]:
        entry = self._base(log, service, revision, at, severity)
        entry["textPayload"] = text
        return entry

    def json_line(
        self, service: str, revision: str, at: float, payload: dict[str, Any], severity: str
    ) -> dict[str, Any]:
        entry = self._base("run.googleapis.com/stderr", service, revision, at, severity)
        entry["jsonPayload"] = payload
        return entry

    def write(self, *entries: dict[str, Any]) -> None:
        answer = httpx.post(
            f"{self.endpoint}/v2/entries:write", json={"entries": list(entries)}, timeout=10
        )
        assert answer.status_code == 200, answer.text
