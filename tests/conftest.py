"""Shared fixtures: manifests written to tmp_path, canary secret values."""

from __future__ import annotations

import itertools
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollsafe.emulator.server import LOG_FILE, EmulatorError, start_emulator, stop_emulator
from tests._postgres import PostgresCluster, find_bindir

REPO = Path(__file__).resolve().parent.parent

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "", None}


def _loopback_only(event: str, args: tuple[object, ...]) -> None:
    """Only loopback addresses are ever targets of network traffic: any other lookup or
    connection made in the test process fails the test that made it."""
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if host not in _LOOPBACK:
        raise RuntimeError(f"network traffic to {host!r}: tests may only reach loopback")


sys.addaudithook(_loopback_only)
EXAMPLES = REPO / "examples"

# Strong random-looking values that must never appear in any output.
CANARY_STRONG = "Cn4ryQ7vX2mK9pL4sT8wZ3bF6hJ1dR5yN0cV7gB2eU9kW4q"
CANARY_JWT = "Jw7Canary_k3Z9xQ2mV8pL5sT1wB6hF4dR0yN7cG3eU8kW2qA9jX5zP1vM6"


def write_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, text) -> path, dedenting text."""

    def _write(name: str, text: str) -> Path:
        return write_file(tmp_path, name, text)

    return _write


BASIC_MANIFEST = """
version: 1
project: netra
environments:
  dev:        {platform: local, strict: false, store: "dotenv:dev.env"}
  staging:    {platform: cloudrun, gcp_project: netra-staging, region: us-central1, strict: true, store: "dotenv:staging.env"}
services:
  backend:
    image: us-docker.pkg.dev/netra/app/backend:1.4.2
    command: [python, -m, uvicorn, app:app, --port, "${PORT}"]
    workdir: app
    health: {path: /health, expect_status: 200, timeout: 2s}
    env:
      ENVIRONMENT: "{env}"
      FRONTEND_URL: "https://app.{env}.example.com"
      OAUTH_REDIRECT_URI:
        value: "https://app.{env}.example.com/auth/callback"
        rules: [{same_origin: FRONTEND_URL}]
    secrets:
      SERVICE_SECRET: {secret: "service-secret-{env}", rules: [machine_secret]}
      JWT_SECRET_KEY: {secret: "jwt-secret-key-{env}", rules: [{jwt_hmac: HS256}]}
      SECRET_KEY:     {secret: "secret-key-{env}", version: latest}
    overrides:
      dev: {env: {FRONTEND_URL: "http://localhost:3000", OAUTH_REDIRECT_URI: "http://localhost:3000/cb"}}
"""


@pytest.fixture
def basic_manifest(write: Callable[[str, str], Path]) -> Path:
    """A valid manifest with a good dev store and a good staging store (canary values)."""
    write(
        "dev.env",
        f"""
        service-secret-dev={CANARY_STRONG}
        jwt-secret-key-dev={CANARY_JWT}
        secret-key-dev={CANARY_STRONG}x
        """,
    )
    write(
        "staging.env",
        f"""
        service-secret-staging={CANARY_STRONG}s
        jwt-secret-key-staging={CANARY_JWT}s
        secret-key-staging={CANARY_STRONG}k
        """,
    )
    return write("rollsafe.yaml", BASIC_MANIFEST)


# -- one real emulator process for the whole session (emulator, adapters, deploys) --
# Under pytest-xdist (`make test`) every session-scoped fixture here exists once per worker:
# its own emulator, state directory and PostgreSQL cluster, each on a free port.

_projects = itertools.count(1)


@pytest.fixture(scope="session")
def emulator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator-state")


@pytest.fixture(scope="session")
def emulator(emulator_dir: Path) -> Iterator[str]:
    """The endpoint (``http://127.0.0.1:PORT``) of a running emulator."""
    try:
        status = start_emulator(emulator_dir)
    except EmulatorError:
        # another worker's process may take the free port before the emulator binds it;
        # only then is a second start (on another free port) worth it
        log = (emulator_dir / LOG_FILE).read_text(errors="replace").lower()
        if "address already in use" not in log:
            raise
        status = start_emulator(emulator_dir)
    assert status.endpoint is not None
    try:
        yield status.endpoint
    finally:
        stop_emulator(emulator_dir)


@pytest.fixture
def project() -> str:
    """A project id of its own for each test, so tests do not see each other's resources."""
    return f"test-project-{next(_projects)}"


# -- a throwaway PostgreSQL cluster for the state tests (tests/_postgres.py) --


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One cluster for the session (Debian's server binaries, run as ``postgres`` when we
    are root). Missing binaries fail the run in CI (``CI`` set) and skip it elsewhere."""
    if find_bindir() is None:
        reason = (
            "PostgreSQL server binaries missing (/usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: never skipped there)")
        pytest.skip(reason)
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_password(postgres_cluster: PostgresCluster) -> str:
    """The ``rollsafe`` role's password (a canary: it must never appear in any output)."""
    return postgres_cluster.password


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database of its own for each test, owned by ``rollsafe``:
    ``postgresql://rollsafe@127.0.0.1:PORT/DB``, without the password (pass it with
    ``PGPASSWORD`` or ``ROLLSAFE_STATE_PASSWORD``; see ``postgres_password``)."""
    postgres_cluster.start()  # a previous test may have left it stopped
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.start()
        postgres_cluster.drop_database(name)
