"""A service deployed by ``rollsafe deploy`` has no drift; a rotation afterwards is drift."""

from __future__ import annotations

from pathlib import Path

from rollsafe.deploy import DeployOptions, EventLog, run_deploy
from rollsafe.drift import DriftReport, run_drift
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.state.journal import DeployJournal
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.drift.world import APPS, REGION, World, strong

BODY = f"""
  api:
    command: [python, echo.py]
    workdir: {APPS}
    health: {{path: /, consecutive: 1, interval: 0.05, verify_timeout: 20s}}
    env:
      GREETING: hello
      FRONTEND_URL: "https://app.{{env}}.example.com"
    secrets:
      SERVICE_SECRET: {{secret: "service-secret-{{env}}", rules: [machine_secret]}}
      JWT_SECRET_KEY: {{secret: "jwt-secret-key-{{env}}", rules: [{{jwt_hmac: HS256}}]}}
      PINNED: {{secret: "pinned-{{env}}", version: 1}}
    jwt_secret: {{names: [JWT_SECRET_KEY]}}
"""


def _drift(env: ResolvedEnvironment, world: World) -> DriftReport:
    with (
        SecretManagerStore(world.project, endpoint=world.endpoint) as store,
        CloudRunPlatform(world.project, REGION, endpoint=world.endpoint) as platform,
    ):
        return run_drift(env, store, platform)


def _deploy(env: ResolvedEnvironment, world: World, state: Path) -> None:
    with (
        SecretManagerStore(world.project, endpoint=world.endpoint) as store,
        CloudRunPlatform(world.project, REGION, endpoint=world.endpoint) as platform,
        DeployJournal(state) as journal,
    ):
        result = run_deploy(
            env, "api", DeployOptions(), platform=platform, store=store,
            journal=journal, listener=EventLog(),
        )  # fmt: skip
    assert result.exit_code == 0, (result.outcome, result.message)


def test_deployed_by_rollsafe_reports_no_drift(world: World, tmp_path: Path) -> None:
    world.add_secret("service-secret-dev", strong())
    world.add_secret("jwt-secret-key-dev", strong(), strong())  # latest is 2: deploy pins it
    world.add_secret("pinned-dev", strong(), strong())  # the manifest pins 1
    env = load_manifest(world.manifest(tmp_path, BODY)).resolve("dev")
    _deploy(env, world, tmp_path / "state")

    report = _drift(env, world)
    assert [f.to_dict() for f in report.findings] == []
    assert not report.drift
    assert report.exit_code == 0
    (revision,) = report.serving["api"]
    assert report.serving["api"][revision] == 100

    # rotated behind the service's back: the manifest's `latest` moved on, the pin did not
    world.add_version("jwt-secret-key-dev", strong())
    report = _drift(env, world)
    assert [(f.kind.value, f.key, f.severity.value) for f in report.findings] == [
        ("wrong_version", "JWT_SECRET_KEY", "warning")
    ]
    (finding,) = report.findings
    assert finding.deployed is not None
    assert (finding.deployed["version"], finding.store) == (
        "2",
        {
            "secret": "jwt-secret-key-dev",
            "exists": True,
            "version": 3,
            "state": "ENABLED",
            "latest": 3,
            "latest_enabled": 3,
        },
    )
    assert report.exit_code == 1
