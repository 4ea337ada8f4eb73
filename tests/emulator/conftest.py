"""The emulator fixtures (`emulator`, `emulator_dir`, `project`) live in tests/conftest.py.

Services are private, as on Cloud Run: tests reach them the way a Google user does, with an
ID token for the service's URL from the metadata server (``IdTokenAuth``), or by granting
``roles/run.invoker`` to ``allUsers`` (``make_public``).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx
from google.cloud import run_v2

IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"


def fetch_id_token(endpoint: str, audience: str) -> str:
    """An ID token for ``audience`` from the emulator's metadata server."""
    response = httpx.get(
        f"{endpoint}{IDENTITY_PATH}",
        params={"audience": audience, "format": "full"},
        headers={"Metadata-Flavor": "Google"},
        timeout=10,
    )
    response.raise_for_status()
    return response.text


class IdTokenAuth(httpx.Auth):
    """Sends each request with an ID token whose audience is the request's origin (the
    service or tag URL), fetched once per URL from the emulator at ``endpoint``."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        audience = f"{request.url.scheme}://{request.url.netloc.decode()}"
        token = self._tokens.get(audience)
        if token is None:
            token = self._tokens[audience] = fetch_id_token(self._endpoint, audience)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def make_public(client: run_v2.ServicesClient, service: str) -> None:
    """Grant ``roles/run.invoker`` to ``allUsers`` on ``service``, as Google's samples do."""
    policy = client.get_iam_policy(request={"resource": service})
    policy.bindings.add(role="roles/run.invoker", members=["allUsers"])
    client.set_iam_policy(request={"resource": service, "policy": policy})
