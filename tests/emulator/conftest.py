"""The emulator fixtures (`emulator`, `emulator_dir`, `project`) live in tests/conftest.py;
here are what the emulator's tests share: clients built against it, Cloud Run constants,
ID tokens and the logging client.

Services are private, as on Cloud Run: tests reach them the way a Google user does, with an
ID token for the service's URL from the metadata server (``IdTokenAuth``), or by granting
``roles/run.invoker`` to ``allUsers`` (``make_public``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from google.api_core.future import polling
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging
from google.cloud import run_v2

from rollsafe._gcp import client_kwargs

IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
APPS = Path(__file__).parent / "apps"
LOCATION = "us-central1"
#: poll operations every 50-250 ms instead of the client's 1-20 s
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.25, multiplier=1.5).with_timeout(
    60
)
_DIAGNOSTIC = "logging.googleapis.com/diagnostic"
#: loggers google-cloud-logging's setup_logging() stops from propagating
_QUIETED = ("google.cloud", "google.auth", "google_auth_httplib2", "google.api_core.bidi")

_Client = TypeVar("_Client")
#: ``run(*args, ok=True)`` of ``configured_gcloud``
Gcloud = Callable[..., subprocess.CompletedProcess[str]]


@contextlib.contextmanager
def gapic_client(client_class: Callable[..., _Client], endpoint: str) -> Iterator[_Client]:
    """A GAPIC client (REST, anonymous credentials) for the emulator at ``endpoint``; its
    transport is closed afterwards, as ``filterwarnings = error`` wants every socket closed."""
    client = client_class(**client_kwargs(endpoint))
    try:
        yield client
    finally:
        client.transport.close()  # type: ignore[attr-defined]


@pytest.fixture
def services(emulator: str) -> Iterator[run_v2.ServicesClient]:
    with gapic_client(run_v2.ServicesClient, emulator) as client:
        yield client


@pytest.fixture
def revisions(emulator: str) -> Iterator[run_v2.RevisionsClient]:
    with gapic_client(run_v2.RevisionsClient, emulator) as client:
        yield client


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


class _GlobalLoggingClient(cloud_logging.Client):  # type: ignore[misc]
    # each logger without a resource (list_entries makes one per log) would otherwise ask
    # the GCE metadata server where it runs: traffic beyond loopback, and seconds of
    # timeout off Google Cloud
    def logger(self, name: str, *, labels: object = None, resource: object = None) -> object:
        resource = resource or cloud_logging.Resource(type="global", labels={})
        return super().logger(name, labels=labels, resource=resource)


@contextlib.contextmanager
def open_logging_client(
    endpoint: str, project: str, *, global_resource: bool = False
) -> Iterator[cloud_logging.Client]:
    """``google.cloud.logging.Client`` for the emulator, closed afterwards: REST through its
    own HTTP client (its GAPIC is gRPC only), anonymous credentials.

    With ``global_resource`` its loggers default to the ``global`` resource and never ask
    the GCE metadata server; without, tests that let the client ask use
    ``metadata_through_the_emulator``, as docs/emulator.md tells users."""
    client_class = _GlobalLoggingClient if global_resource else cloud_logging.Client
    client = client_class(
        project=project,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": endpoint},
    )
    try:
        yield client
    finally:
        client.close()


def written_entries(client: cloud_logging.Client, filter_: str) -> list[Any]:
    """The entries matching ``filter_`` that the test wrote: the first write of a process
    also sends the client's ``logging.googleapis.com/diagnostic`` entry (Google keeps it
    too), left out here."""
    return [
        entry
        for entry in client.list_entries(filter_=filter_)
        if not (isinstance(entry.payload, dict) and _DIAGNOSTIC in entry.payload)
    ]


@pytest.fixture
def metadata_through_the_emulator(emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator as the HTTP proxy (loopback exempt): it answers the logging client's GCE
    metadata lookup itself, so detection ends at once and nothing leaves loopback."""
    monkeypatch.setenv("HTTP_PROXY", emulator)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards with ``cloudLogger`` (the samples' logger):
    handlers (closing those added), level, and the propagation setup_logging() turns off."""
    loggers = [logging.getLogger(), logging.getLogger("cloudLogger")]
    saved = [(list(each.handlers), each.level) for each in loggers]
    propagate = {name: logging.getLogger(name).propagate for name in (*_QUIETED, "werkzeug")}
    try:
        yield loggers[0]
    finally:
        for each, (handlers, level) in zip(loggers, saved, strict=True):
            for handler in list(each.handlers):
                if handler not in handlers:
                    each.removeHandler(handler)
                    handler.close()
            each.setLevel(level)
        for name, value in propagate.items():
            logging.getLogger(name).propagate = value


def configured_gcloud(endpoint: str, project: str, config_dir: Path, api: str) -> Gcloud:
    """gcloud with a configuration of its own in ``config_dir``: ``api`` (``logging``,
    ``secretmanager``) at the emulator, no credentials, ``project``. Skips the test where
    gcloud is not installed.

    ``run(*args, ok=True)`` asserts that gcloud succeeded (``ok=False``: failed), its stderr
    in the message, and returns the finished process."""
    executable = shutil.which("gcloud")
    if executable is None:
        pytest.skip("gcloud is not installed")
    env = {**os.environ, "CLOUDSDK_CONFIG": str(config_dir), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [executable, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert (done.returncode == 0) == ok, done.stderr
        return done

    # gcloud appends "v1/..." to the override, so it must end with a slash
    run("config", "set", f"api_endpoint_overrides/{api}", f"{endpoint}/")
    run("config", "set", "auth/disable_credentials", "true")
    run("config", "set", "core/project", project)
    return run
