"""``ROLLSAFE_GCP_ENDPOINT``: one emulator shared by several checkouts, and where clients go.

With the variable set, every command of every manifest uses that endpoint, on ``local`` and
``cloudrun`` environments alike, and no command starts an emulator (no ``emulator.json``
appears beside any manifest). An unusable value is a usage error naming the variable.
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollsafe._environments import GCP_ENDPOINT_ENV, gcp_endpoint, validate_endpoint
from rollsafe.cli import app
from rollsafe.manifest import load_manifest
from rollsafe.state import STATE_DIR_NAME
from tests.conftest import CANARY_STRONG
from tests.drift.world import World


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def world(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    monkeypatch.setenv(GCP_ENDPOINT_ENV, emulator)
    made = World(emulator)
    try:
        yield made
    finally:
        made.close()


def test_two_checkouts_share_one_emulator(world: World, tmp_path: Path) -> None:
    world.add_secret("api-key-dev", CANARY_STRONG)
    world.create_service("api", secret_refs={"API_KEY": "api-key-dev:1"})
    body = """
  api:
    secrets:
      API_KEY: {secret: "api-key-{env}", version: 1}
"""
    checkouts = [tmp_path / "one", tmp_path / "two"]
    for checkout in checkouts:
        checkout.mkdir()
        manifest = world.manifest(checkout, body)
        code, stdout, _ = _cli("drift", "-f", str(manifest), "--env", "dev", "--format", "json")
        assert code == 0, stdout
        assert CANARY_STRONG not in stdout
    for checkout in checkouts:
        assert not (checkout / STATE_DIR_NAME).exists(), "an emulator was started"

    code, stdout, _ = _cli("emulator", "status", "-f", str(checkouts[0] / "rollsafe.yaml"))
    assert code == 0
    assert f"{GCP_ENDPOINT_ENV}: {world.endpoint} (answers)" in stdout
    code, stdout, _ = _cli(
        "emulator", "status", "-f", str(checkouts[1] / "rollsafe.yaml"), "--format", "json"
    )
    status = json.loads(stdout)
    assert (status["gcp_endpoint"], status["gcp_endpoint_answers"]) == (world.endpoint, True)


def test_it_overrides_cloudrun_environments_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "rollsafe.yaml"
    manifest.write_text(
        "version: 1\nproject: p\nenvironments:\n"
        "  prod: {platform: cloudrun, gcp_project: p-prod}\nservices: {}\n",
        encoding="utf-8",
    )
    env = load_manifest(manifest).resolve("prod")
    monkeypatch.delenv(GCP_ENDPOINT_ENV, raising=False)
    assert gcp_endpoint(env) is None
    monkeypatch.setenv(GCP_ENDPOINT_ENV, "http://127.0.0.1:8790/")
    assert gcp_endpoint(env) == "http://127.0.0.1:8790"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("http://127.0.0.1:8790", "http://127.0.0.1:8790", id="loopback"),
        pytest.param("http://localhost:8790/", "http://localhost:8790", id="localhost"),
        pytest.param("http://[::1]:8790", "http://[::1]:8790", id="ipv6"),
        pytest.param(
            "https://emulator.ci.example:8443", "https://emulator.ci.example:8443", id="https"
        ),
    ],
)
def test_valid_endpoints(raw: str, expected: str) -> None:
    assert validate_endpoint(raw) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        pytest.param("http://10.0.0.5:8790", "loopback only", id="plain-http-elsewhere"),
        pytest.param("127.0.0.1:8790", "expected http://", id="no-scheme"),
        pytest.param("http://127.0.0.1:8790/v1", "path", id="path"),
        pytest.param("http://user:Pw-canary@127.0.0.1:1", "credentials", id="credentials"),
        pytest.param("http://127.0.0.1:99999", "not a URL", id="bad-port"),
    ],
)
def test_unusable_value_is_a_usage_error_naming_the_variable(
    raw: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GCP_ENDPOINT_ENV, raw)
    manifest = tmp_path / "rollsafe.yaml"
    manifest.write_text(
        "version: 1\nproject: p\nenvironments:\n  dev: {platform: local}\nservices: {}\n",
        encoding="utf-8",
    )
    code, stdout, stderr = _cli("drift", "-f", str(manifest), "--env", "dev")
    assert code == 2
    assert GCP_ENDPOINT_ENV in stderr
    assert words in stderr
    assert "Pw-canary" not in stdout + stderr
    assert not (tmp_path / STATE_DIR_NAME).exists()


def test_gcloud_config_properties(world: World, tmp_path: Path) -> None:
    manifest = world.manifest(tmp_path, "  api: {}\n")
    directory = tmp_path / "gc"
    (directory / "configurations").mkdir(parents=True)
    (directory / "configurations" / "config_default").write_text(
        "[core]\naccount = someone@example.com\n", encoding="utf-8"
    )
    code, stdout, _ = _cli(
        "emulator", "gcloud-config", "-f", str(manifest), "--env", "dev",
        "--config-dir", str(directory), "--format", "json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(stdout)
    assert data["export"] == f"export CLOUDSDK_CONFIG={directory}"
    assert (directory / "active_config").read_text() == "default"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(directory / "configurations" / "config_default")
    port = world.endpoint.rsplit(":", 1)[1]
    own = f"http://127.0.0.1:{port}/"
    assert {
        k: parser["api_endpoint_overrides"][k] for k in ("run", "secretmanager", "logging")
    } == {
        "run": own,
        "secretmanager": own,
        "logging": own,
    }
    assert dict(parser["proxy"]) == {"type": "http", "address": "127.0.0.1", "port": port}
    assert parser["auth"]["disable_credentials"] == "true"
    assert parser["core"]["project"] == world.project
    assert parser["core"]["account"] == "someone@example.com"  # kept
    assert parser["run"]["region"] == "us-central1"
    assert not (tmp_path / STATE_DIR_NAME).exists()
