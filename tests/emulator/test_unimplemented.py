"""Methods the emulator does not implement answer 501 UNIMPLEMENTED in Google's error shape.

404 means "no such resource" and nothing else, so ``exists()`` checks and "create if
missing" loops never mistake a missing method for a missing resource.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from rollsafe.emulator._google import UNIMPLEMENTED_MESSAGE
from tests.emulator.conftest import gapic_client, open_logging_client

_RUN = "/v2/projects/{project}/locations/us-central1"


_UNKNOWN = [
    ("GET", _RUN + "/jobs"),
    ("POST", _RUN + "/jobs"),
    ("GET", _RUN + "/jobs/nightly"),
    ("POST", _RUN + "/jobs/nightly:run"),
    ("GET", _RUN + "/jobs/nightly/executions"),
    ("GET", _RUN + "/workerPools"),
    ("POST", _RUN + "/services/api"),  # POST on a service: no such method
    ("GET", _RUN + "/services/api:setIamPolicy"),  # setIamPolicy is POST only
    ("POST", _RUN + "/operations/op-1:cancel"),
    ("GET", "/v2/projects/{project}/locations/global/buckets"),
    ("GET", "/v2/projects/{project}/exclusions"),
    ("POST", "/v2/entries:tail"),
    ("GET", "/v2/monitoredResourceDescriptors"),
    ("DELETE", "/v2/entries:write"),  # a known path with a method it does not take
    ("PATCH", "/v2/projects/{project}/metrics/m"),  # metrics are updated with PUT
    ("GET", "/v3/projects/{project}/timeSeries"),
    ("GET", "/v1/projects/{project}/topics"),
]


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param(method, path, id=f"{method} {path}") for method, path in _UNKNOWN],
)
def test_unknown_methods_are_501(emulator: str, project: str, method: str, path: str) -> None:
    target = path.format(project=project)
    reply = httpx.request(method, f"{emulator}{target}", json={})
    assert reply.status_code == 501, reply.text
    assert reply.json() == {
        "error": {
            "code": 501,
            "message": f"{UNIMPLEMENTED_MESSAGE} ({method} {target})",
            "status": "UNIMPLEMENTED",
        }
    }


def test_the_emulators_own_endpoints_still_answer(emulator: str) -> None:
    assert httpx.get(f"{emulator}/").status_code == 200
    # the metadata server answers 404 for an attribute it does not have, not 501
    missing = httpx.get(
        f"{emulator}/computeMetadata/v1/instance/no-such-attribute",
        headers={"Metadata-Flavor": "Google"},
    )
    assert missing.status_code == 404


@pytest.fixture
def jobs(emulator: str) -> Iterator[run_v2.JobsClient]:
    with gapic_client(run_v2.JobsClient, emulator) as client:
        yield client


def test_official_clients_tell_missing_methods_from_missing_resources(
    emulator: str, project: str, jobs: run_v2.JobsClient
) -> None:
    name = f"projects/{project}/locations/us-central1/jobs/nightly"
    with pytest.raises(exceptions.MethodNotImplemented, match="Method not found"):
        jobs.get_job(name=name)
    with open_logging_client(emulator, project) as logging_client:
        # a missing sink is a 404 on the resource: exists() is False, not an error
        assert not logging_client.sink("never-created").exists()
        assert not logging_client.metric("never-created").exists()
