"""``gcloud run`` against the emulator, configured by ``rollsafe emulator gcloud-config``.

gcloud runs as a subprocess with ``CLOUDSDK_CONFIG`` set to the directory the command
wrote: Cloud Run v1 (Knative) on ``REGION-127.0.0.1:PORT`` through the emulator acting as
gcloud's HTTP proxy, credentials disabled. Skipped only where gcloud is not installed.
Each gcloud call costs 1-2 s of start-up, so the calls are few and each checks much.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import run_v2
from typer.testing import CliRunner

from rollsafe._environments import GCP_ENDPOINT_ENV
from rollsafe.cli import app
from rollsafe.state import STATE_DIR_NAME
from tests.conftest import CANARY_JWT, CANARY_STRONG
from tests.drift.world import REGION, World

pytestmark = pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed")

_PROXY_VARS = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def gcloud_config(directory: Path, *args: str) -> Path:
    """Run ``rollsafe emulator gcloud-config``; the directory from its ``export`` line."""
    code, stdout, stderr = _cli("emulator", "gcloud-config", "--config-dir", str(directory), *args)
    assert code == 0, stderr
    line = stdout.strip()
    assert line.startswith("export CLOUDSDK_CONFIG=")
    return Path(shlex.split(line.removeprefix("export "))[0].split("=", 1)[1])


def gcloud(config: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """gcloud with only ``CLOUDSDK_CONFIG`` of gcloud's settings (no proxy variables)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CLOUDSDK_") and key.lower() not in _PROXY_VARS
    }
    env["CLOUDSDK_CONFIG"] = str(config)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)


@pytest.fixture
def world(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A project of its own; rollsafe's clients share the session emulator through
    ``ROLLSAFE_GCP_ENDPOINT`` (so no command starts an emulator of its own)."""
    monkeypatch.setenv(GCP_ENDPOINT_ENV, emulator)
    made = World(emulator)
    try:
        yield made
    finally:
        made.close()


def test_drift_fix_for_an_unmapped_secret_works_as_printed(world: World, tmp_path: Path) -> None:
    world.add_secret("service-secret-dev", CANARY_STRONG)
    world.add_secret("jwt-secret-key-dev", CANARY_JWT)
    world.create_service("backend", secret_refs={"SERVICE_SECRET": "service-secret-dev:1"})
    manifest = world.manifest(
        tmp_path,
        """
  backend:
    secrets:
      SERVICE_SECRET: {secret: "service-secret-{env}", version: 1}
      JWT_SECRET_KEY: {secret: "jwt-secret-key-{env}", version: 1}
    jwt_secret: {names: [JWT_SECRET_KEY]}
""",
    )
    config = gcloud_config(tmp_path / "gcloud", "-f", str(manifest), "--env", "dev")
    code, stdout, _ = _cli("drift", "-f", str(manifest), "--env", "dev", "--format", "json")
    assert code == 1
    findings = json.loads(stdout)["findings"]
    assert [(f["kind"], f["key"]) for f in findings] == [("unmapped_secret", "JWT_SECRET_KEY")]
    command = findings[0]["fix"]["gcloud"]
    assert command.startswith("gcloud run services update backend --update-secrets ")

    fixed = gcloud(config, shlex.split(command))
    assert fixed.returncode == 0, fixed.stderr
    for output in (fixed.stdout, fixed.stderr):
        assert CANARY_STRONG not in output
        assert CANARY_JWT not in output

    code, stdout, _ = _cli("drift", "-f", str(manifest), "--env", "dev", "--format", "json")
    assert code == 0, stdout
    # the CLI used the shared emulator: none was started beside the manifest
    assert not (tmp_path / STATE_DIR_NAME / "emulator.json").exists()


def _run(config: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["gcloud", "run", *args, "--project", project, "--region", REGION]
    done = gcloud(config, argv)
    assert done.returncode == 0, done.stderr
    return done


def _service(world: World, name: str) -> run_v2.Service:
    return world.run.get_service(
        name=f"projects/{world.project}/locations/{REGION}/services/{name}"
    )


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def test_list_describe_update_and_traffic(world: World, tmp_path: Path) -> None:
    world.add_secret("token", CANARY_STRONG)
    first = world.create_service("web", env={"GREETING": "hi"}, secret_refs={"TOKEN": "token:1"})
    config = gcloud_config(tmp_path / "gcloud", "-f", str(tmp_path / "absent.yaml"))

    listed = json.loads(_run(config, world.project, "services", "list", "--format", "json").stdout)
    assert [
        (s["metadata"]["name"], s["metadata"]["labels"]["cloud.googleapis.com/location"])
        for s in listed
    ] == [("web", REGION)]

    described: dict[str, Any] = json.loads(
        _run(config, world.project, "services", "describe", "web", "--format", "json").stdout
    )
    assert described["status"]["url"] == first.uri
    env = described["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "1"}}} in env

    _run(
        config, world.project, "services", "update", "web",
        "--update-env-vars", "MODE=canary", "--remove-env-vars", "GREETING",
        "--remove-secrets", "TOKEN",
    )  # fmt: skip
    second = _service(world, "web")
    container = second.template.containers[0]
    assert [(e.name, e.value) for e in container.env] == [("MODE", "canary")]
    assert second.latest_ready_revision != first.latest_ready_revision
    old, new = _short(first.latest_ready_revision), _short(second.latest_ready_revision)

    split = f"{old}=25,{new}=75"
    _run(config, world.project, "services", "update-traffic", "web", "--to-revisions", split)
    routed = _service(world, "web")
    assert sorted((t.revision, t.percent) for t in routed.traffic_statuses) == sorted(
        [(old, 25), (new, 75)]
    )
    revisions = _run(
        config, world.project, "revisions", "list", "--service", "web", "--format", "json"
    )
    names = [r["metadata"]["name"] for r in json.loads(revisions.stdout)]
    assert names == [new, old]

    _run(config, world.project, "services", "update-traffic", "web", "--to-latest")
    latest = _service(world, "web")
    assert [(t.type_, t.percent) for t in latest.traffic] == [
        (run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, 100)
    ]
    missing = gcloud(
        config,
        ["gcloud", "run", "services", "describe", "nope", "--project", world.project,
         "--region", REGION],
    )  # fmt: skip
    assert missing.returncode == 1
    assert "Cannot find service [nope]" in missing.stderr


def test_drift_fix_for_access_works_as_printed(world: World, tmp_path: Path) -> None:
    """``public: true`` in the manifest, a private service: the add-iam-policy-binding fix
    that drift prints opens it, through v1 ``services/S:getIamPolicy|:setIamPolicy``."""
    service = world.create_service("site")
    manifest = world.manifest(tmp_path, "  site:\n    public: true\n")
    config = gcloud_config(tmp_path / "gcloud", "-f", str(manifest), "--env", "dev")
    with httpx.Client(timeout=10) as http:
        assert http.get(service.uri).status_code == 403
        code, stdout, _ = _cli("drift", "-f", str(manifest), "--env", "dev", "--format", "json")
        assert code == 1
        findings = json.loads(stdout)["findings"]
        assert [f["kind"] for f in findings] == ["access_mismatch"]
        command = findings[0]["fix"]["gcloud"]
        assert "add-iam-policy-binding site --member=allUsers" in command

        done = gcloud(config, shlex.split(command))
        assert done.returncode == 0, done.stderr
        assert "allUsers" in done.stdout
        assert http.get(service.uri).status_code == 200
    code, stdout, _ = _cli("drift", "-f", str(manifest), "--env", "dev", "--format", "json")
    assert code == 0, stdout
