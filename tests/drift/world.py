"""Drift made on the emulator with Google's own clients, bypassing rollsafe.

``World`` creates secrets with ``SecretManagerServiceClient`` and services with
``run_v2.ServicesClient``; each service's revision runs ``tests/emulator/apps/echo.py``.
"""

from __future__ import annotations

import itertools
import secrets
import textwrap
from pathlib import Path
from typing import Any

from google.api_core.future import polling
from google.cloud import run_v2, secretmanager

from rollsafe._gcp import client_kwargs

APPS = Path(__file__).resolve().parent.parent / "emulator" / "apps"
REGION = "us-central1"
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.25, multiplier=1.5).with_timeout(
    60
)
_ids = itertools.count(1)


def strong() -> str:
    """A random value that passes every default rule."""
    return secrets.token_urlsafe(32)


class World:
    """One project on the emulator, driven only by Google's clients."""

    def __init__(self, endpoint: str, project: str | None = None) -> None:
        self.endpoint = endpoint
        self.project = project or f"drift-{next(_ids)}-{secrets.token_hex(3)}"
        kwargs = client_kwargs(endpoint)
        self.sm = secretmanager.SecretManagerServiceClient(**kwargs)
        self.run = run_v2.ServicesClient(**kwargs)
        #: every payload written, so leak tests can look for each
        self.payloads: list[str] = []

    def close(self) -> None:
        self.sm.transport.close()
        self.run.transport.close()

    # -- Secret Manager --
    def secret_path(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def add_secret(self, name: str, *values: str) -> None:
        self.sm.create_secret(
            parent=f"projects/{self.project}",
            secret_id=name,
            secret={"replication": {"automatic": {}}},
        )
        for value in values:
            self.add_version(name, value)

    def add_version(self, name: str, value: str) -> int:
        self.payloads.append(value)
        version = self.sm.add_secret_version(
            parent=self.secret_path(name), payload={"data": value.encode()}
        )
        return int(version.name.rsplit("/", 1)[-1])

    def disable(self, name: str, version: int) -> None:
        self.sm.disable_secret_version(name=f"{self.secret_path(name)}/versions/{version}")

    def destroy(self, name: str, version: int) -> None:
        self.sm.destroy_secret_version(name=f"{self.secret_path(name)}/versions/{version}")

    def delete(self, name: str) -> None:
        self.sm.delete_secret(name=self.secret_path(name))

    # -- Cloud Run --
    def create_service(
        self,
        service: str,
        env: dict[str, str] | None = None,
        secret_refs: dict[str, str] | None = None,
    ) -> run_v2.Service:
        """A service running echo.py with plain ``env`` and ``secret_refs`` (KEY -> NAME:VER)."""
        variables = [run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()]
        for key, ref in (secret_refs or {}).items():
            name, _, version = ref.partition(":")
            selector = run_v2.SecretKeySelector(secret=name, version=version or "latest")
            source = run_v2.EnvVarSource(secret_key_ref=selector)
            variables.append(run_v2.EnvVar(name=key, value_source=source))
        container = run_v2.Container(
            image="ignored-locally",
            command=["python", "echo.py"],
            working_dir=str(APPS),
            env=variables,
        )
        operation = self.run.create_service(
            parent=f"projects/{self.project}/locations/{REGION}",
            service_id=service,
            service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
        )
        result: run_v2.Service = operation.result(polling=FAST)
        return result

    def manifest(self, tmp: Path, body: str, **environment: Any) -> Path:
        """Write ``rollsafe.yaml`` with a ``dev`` environment on this project; ``body`` holds
        the services, indented by two spaces."""
        strict = "true" if environment.get("strict") else "false"
        head = textwrap.dedent(
            f"""
            version: 1
            project: drift
            environments:
              dev: {{platform: local, gcp_project: {self.project}, region: {REGION}, strict: {strict}}}
            services:
            """
        ).lstrip()
        path = tmp / "rollsafe.yaml"
        path.write_text(head + body.strip("\n") + "\n", encoding="utf-8")
        return path
