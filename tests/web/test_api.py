"""The JSON API under ``/api/v1/``: the documents the pages are rendered from, and
``summary.json`` in Statuspage's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollsafe.errors import RollsafeError
from rollsafe.incidents import EvidenceSet, build_report
from rollsafe.incidents.model import Episode, IncidentReport
from rollsafe.monitor.server import Request
from rollsafe.web.app import StatusApp
from rollsafe.web.model import ServiceState, Staleness
from tests.web._fake import NOW, FakeStatusData, episode, status


def _report(ep: Episode) -> IncidentReport:
    evidence = EvidenceSet(env="staging", services=ep.services, since=ep.start - 600, until=NOW)
    return build_report(evidence, ep, now=NOW)


@pytest.fixture
def data() -> FakeStatusData:
    return FakeStatusData(
        [
            status("backend", ServiceState.MAJOR_OUTAGE),
            status("frontend"),
            status("worker", ServiceState.DEGRADED_PERFORMANCE),
        ],
        [episode("backend", ended=False), episode("frontend", start=NOW - 86400)],
        stale=Staleness(True, NOW - 300, 30.0),
    )


@pytest.fixture
def app(data: FakeStatusData) -> StatusApp:
    return StatusApp(data, clock=lambda: NOW, reports=_report, base_url="http://127.0.0.1:9465")


def _get(app: StatusApp, path: str, status: int = 200) -> Any:
    response = app.handle(Request("GET", path))
    assert response.status == status, (path, response.body[:200])
    assert response.content_type == "application/json; charset=utf-8"
    assert ("X-Content-Type-Options", "nosniff") in response.headers
    return json.loads(response.body)


def test_summary_is_what_the_script_polls(app: StatusApp) -> None:
    doc = _get(app, "/api/v1/summary")
    assert doc["env"] == "staging"
    assert doc["interval"] == 30.0
    assert doc["generation"] == 1
    assert doc["indicator"] == {"indicator": "critical", "description": "Major System Outage"}
    assert doc["staleness"] == {"stale": True, "last_write": NOW - 300, "interval": 30.0}
    assert doc["counts"] == {
        "operational": 1,
        "degraded_performance": 1,
        "partial_outage": 0,
        "major_outage": 1,
    }
    assert doc["services"][0] == {
        "name": "backend",
        "state": "major_outage",
        "label": "Major outage",
        "alerts": 0,
        "updated": NOW - 10,
    }
    assert [s["name"] for s in doc["services"]] == ["backend", "frontend", "worker"]


def test_services_and_a_service(app: StatusApp) -> None:
    doc = _get(app, "/api/v1/services")
    row = doc["services"][1]
    assert set(row) == {
        "name", "state", "uptime", "days", "latency", "traffic", "last_deploy", "alerts",
        "updated",
    }  # fmt: skip
    assert len(row["days"]) == 90
    assert len(row["latency"]) == 24
    assert row["uptime"]["24h"] == 0.9995
    one = _get(app, "/api/v1/services/backend")
    assert one["env"] == "staging"
    assert one["name"] == "backend"
    assert set(one["charts"]) == {"24h", "7d", "30d"}
    assert len(one["charts"]["24h"]) == 288
    assert [m["kind"] for m in one["markers"]] == ["deploy", "rollback", "deploy"]
    assert one["drift"]["findings"][0]["key"] == "LOG_LEVEL"
    assert one["incidents"][0]["id"].startswith("INC-")


def test_incidents_and_an_incident_with_its_report(app: StatusApp, data: FakeStatusData) -> None:
    doc = _get(app, "/api/v1/incidents")
    ids = [i["id"] for i in doc["incidents"]]
    assert ids == [e.id for e in data.episodes]
    assert doc["incidents"][0]["url"] == f"/incidents/{ids[0]}"
    assert doc["incidents"][0]["end"] is None
    one = _get(app, f"/api/v1/incidents/{ids[1]}")
    assert one["episode"]["id"] == ids[1]
    assert one["problem"] is None
    assert one["report"]["schema"] == "rollsafe.dev/why/v1"
    assert one["report"]["summary"]["env"] == "staging"


def test_an_incident_without_a_report_says_why(data: FakeStatusData) -> None:
    def reports(ep: Episode) -> IncidentReport:
        raise RollsafeError("cannot read Google Cloud")

    app = StatusApp(data, clock=lambda: NOW, reports=reports)
    one = _get(app, f"/api/v1/incidents/{data.episodes[0].id}")
    assert one["report"] is None
    assert one["problem"] == "cannot read Google Cloud"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/services/nope", "/api/v1/incidents/INC-nope", "/api/v1/nope", "/api/v1/"],
    ids=["service", "incident", "document", "root"],
)
def test_unknown_documents_are_404(app: StatusApp, path: str) -> None:
    assert "error" in _get(app, path, 404)


def test_summary_json_has_statuspages_shape(app: StatusApp) -> None:
    doc = _get(app, "/api/v1/summary.json")
    assert set(doc) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert doc["page"] == {
        "id": "staging",
        "name": "rollsafe: staging",
        "url": "http://127.0.0.1:9465",
        "time_zone": "Etc/UTC",
        "updated_at": "2026-12-06T09:39:50.000Z",
    }
    assert doc["status"] == {"indicator": "critical", "description": "Major System Outage"}
    assert doc["scheduled_maintenances"] == []
    backend = doc["components"][0]
    assert set(backend) == {
        "id", "name", "status", "created_at", "updated_at", "position", "description",
        "showcase", "start_date", "group_id", "page_id", "group", "only_show_if_degraded",
    }  # fmt: skip
    assert (backend["name"], backend["status"], backend["position"]) == (
        "backend",
        "major_outage",
        1,
    )
    assert [c["status"] for c in doc["components"]] == [
        "major_outage",
        "operational",
        "degraded_performance",
    ]
    # only the unresolved incident, with the impact of its service's state
    (incident,) = doc["incidents"]
    assert incident["status"] == "investigating"
    assert incident["impact"] == "critical"
    assert incident["resolved_at"] is None
    assert incident["shortlink"] == f"http://127.0.0.1:9465/incidents/{incident['id']}"
    assert [c["name"] for c in incident["components"]] == ["backend"]
    (update,) = incident["incident_updates"]
    assert update["affected_components"] == [
        {
            "code": "backend",
            "name": "backend",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    assert {
        "id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at",
        "impact", "shortlink", "started_at", "page_id", "incident_updates", "components",
    } == set(incident)  # fmt: skip


def test_api_answers_are_gzipped_when_accepted(app: StatusApp) -> None:
    import gzip

    response = app.handle(Request("GET", "/api/v1/services", headers={"accept-encoding": "gzip"}))
    assert ("Content-Encoding", "gzip") in response.headers
    assert json.loads(gzip.decompress(response.body))["env"] == "staging"
