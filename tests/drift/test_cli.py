"""``rollsafe drift`` on the command line: formats, exit codes, --verbose, and no leaks.

``platform: local`` opens the emulator of the state directory beside the manifest; each
test's state directories get the session emulator's ``emulator.json``, as
``tests/deploy`` does, so the CLI finds the running emulator as a user's shell would.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rollsafe._environments
from rollsafe.cli import app
from rollsafe.emulator.server import RUN_FILE, stop_emulator
from rollsafe.state import STATE_DIR_NAME
from tests.drift.scenario import EXPECTED, Drifted
from tests.drift.world import World, strong


@pytest.fixture(autouse=True)
def _session_emulator(
    monkeypatch: pytest.MonkeyPatch, emulator_dir: Path, drifted: Drifted, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    states = [drifted.manifest.parent / STATE_DIR_NAME, tmp_path / STATE_DIR_NAME]
    for state in states:
        state.mkdir(exist_ok=True)
        shutil.copy2(emulator_dir / RUN_FILE, state / RUN_FILE)
    yield
    # had the CLI judged the session's emulator gone, it would have started one of its own
    session = json.loads((emulator_dir / RUN_FILE).read_text())
    for state in states:
        ours = state / RUN_FILE
        if ours.exists() and json.loads(ours.read_text()).get("pid") != session.get("pid"):
            stop_emulator(state)
            pytest.fail(f"the CLI started an emulator of its own in {state}")


def drift(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["drift", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


def test_drift_is_exit_1_and_json_parses(drifted: Drifted) -> None:
    code, stdout, _ = drift("-f", str(drifted.manifest), "--env", "dev", "--format", "json")
    assert code == 1
    data = json.loads(stdout)
    assert data["drift"] is True
    kinds = {f["kind"] for f in data["findings"]}
    assert kinds == {row[0] for row in EXPECTED}
    for finding in data["findings"]:
        for field in ("kind", "service", "key", "manifest", "store", "deployed", "severity",
                      "message", "hint", "fix", "source"):  # fmt: skip
            assert field in finding, (field, finding)


def test_no_drift_is_exit_0(drifted: Drifted) -> None:
    code, stdout, _ = drift("-f", str(drifted.manifest), "--env", "dev", "-s", "clean")
    assert code == 0, stdout
    assert "✓ clean" in stdout
    assert "no drift" in stdout


def test_info_alone_is_not_drift(world: World, tmp_path: Path) -> None:
    world.add_secret("api-key-dev", strong())
    world.add_secret("old-api-key-dev", strong())  # an orphan: info
    world.create_service("api", secret_refs={"API_KEY": "api-key-dev:1"})
    body = '  api:\n    secrets: {API_KEY: {secret: "api-key-{env}"}}\n'
    manifest = world.manifest(tmp_path, body)
    code, stdout, _ = drift("-f", str(manifest), "--env", "dev", "--format", "json")
    data = json.loads(stdout)
    assert [f["kind"] for f in data["findings"]] == ["orphan_secret"]
    assert (code, data["drift"]) == (0, False)


def test_the_incident_jwt_fix_is_printed(drifted: Drifted) -> None:
    code, stdout, _ = drift("-f", str(drifted.manifest), "--env", "dev", "-s", "incident")
    assert code == 1
    assert "JWT_SECRET_KEY [unmapped_secret]" in stdout
    project = drifted.world.project
    assert (
        "gcloud run services update incident --update-secrets JWT_SECRET_KEY=jwt-secret-key-dev:1"
        f" --region us-central1 --project {project}"
    ) in stdout
    assert f"rollsafe deploy -f {drifted.manifest} --env dev --service incident" in stdout


@pytest.mark.parametrize("fmt", ["sarif", "github"])
def test_sarif_and_github(drifted: Drifted, fmt: str) -> None:
    code, stdout, _ = drift("-f", str(drifted.manifest), "--env", "dev", "--format", fmt)
    assert code == 1
    if fmt == "sarif":
        results = json.loads(stdout)["runs"][0]["results"]
        assert {r["ruleId"] for r in results} == {row[0] for row in EXPECTED}
        assert all("kind" in r["properties"] and "deployed" in r["properties"] for r in results)
    else:
        assert "::error file=" in stdout
        assert "title=incident.JWT_SECRET_KEY [unmapped_secret]" in stdout
        assert stdout.rstrip().splitlines()[-1].startswith("rollsafe drift dev: drift")


def test_verbose_prints_the_api_calls(drifted: Drifted) -> None:
    code, stdout, stderr = drift(
        "-f", str(drifted.manifest), "--env", "dev", "--format", "json", "--verbose"
    )
    assert code == 1
    json.loads(stdout)  # the count goes to stderr and leaves the JSON whole
    assert "API calls: 33 (secretmanager: list_secrets=1 list_versions=10 access=7;" in stderr
    assert "run: get_service=5 list_revisions=5 get_iam_policy=5)" in stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-s", "nope"], "unknown service 'nope'"),
        (["--format", "xml"], "'xml' is not one of"),
    ],
    ids=["unknown-service", "bad-format"],
)
def test_usage_errors_are_exit_2(drifted: Drifted, args: list[str], words: str) -> None:
    code, _, stderr = drift("-f", str(drifted.manifest), "--env", "dev", *args)
    assert code == 2
    assert words in stderr


def test_unknown_env_and_bad_manifest_are_exit_2(
    drifted: Drifted, write: Callable[[str, str], Path]
) -> None:
    code, _, stderr = drift("-f", str(drifted.manifest), "--env", "staging")
    assert (code, "unknown environment 'staging'" in stderr) == (2, True)
    bad = write("bad.yaml", "version: 1\nproject: p\nenvironments: {}\n")
    code, _, stderr = drift("-f", str(bad), "--env", "dev")
    assert code == 2


def test_unreachable_store_is_exit_2(drifted: Drifted) -> None:
    store = f"secretmanager:{drifted.world.project}@{_dead_endpoint()}"
    code, stdout, stderr = drift("-f", str(drifted.manifest), "--env", "dev", "--store", store)
    assert code == 2
    assert "cannot compare" in stderr
    assert "cannot be reached" in stderr
    assert stdout == ""


def test_unreachable_platform_is_exit_2(drifted: Drifted, monkeypatch: pytest.MonkeyPatch) -> None:
    # the environment's emulator is gone: its recorded endpoint answers nothing
    dead = _dead_endpoint()
    monkeypatch.setattr(rollsafe._environments, "emulator_endpoint", lambda env: dead)
    code, stdout, stderr = drift("-f", str(drifted.manifest), "--env", "dev")
    assert code == 2
    assert "cannot compare" in stderr
    assert "unreachable" in stderr
    assert stdout == ""


def test_no_canary_in_any_output(drifted: Drifted) -> None:
    # every payload the scenario wrote (strong, weak, and the one deployed as a plain value)
    canaries = drifted.canaries
    assert len(canaries) > 10
    ran = 0
    for fmt in ("text", "json", "sarif", "github"):
        for extra in ([], ["--verbose"], ["-s", "envs"], ["-s", "weak"]):
            result = CliRunner().invoke(
                app, ["drift", "-f", str(drifted.manifest), "--env", "dev", "--format", fmt, *extra]
            )
            assert result.exit_code == 1, result.output
            text = result.stdout + result.stderr + repr(result.exception)
            for canary in canaries:
                assert canary not in text, (fmt, extra)
            ran += 1
    assert ran == 16


def test_findings_judged_the_canaries(drifted: Drifted) -> None:
    # guard against a vacuous leak test: the weak value and the plain one were judged
    _, stdout, _ = drift("-f", str(drifted.manifest), "--env", "dev", "--format", "json")
    kinds = {(f["kind"], f["key"]) for f in json.loads(stdout)["findings"]}
    assert ("weak_secret", "PASSWORD") in kinds
    assert ("secret_as_plain_value", "API_KEY") in kinds


def test_no_google_credentials_is_exit_2(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a credentials file that does not exist fails at client creation, with no network
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    manifest = write(
        "rollsafe.yaml",
        """
        version: 1
        project: p
        environments:
          prod: {platform: cloudrun, gcp_project: p-prod, region: us-central1}
        services:
          api: {}
        """,
    )
    code, stdout, stderr = drift("-f", str(manifest), "--env", "prod")
    assert code == 2
    assert "no usable credentials" in stderr
    assert stdout == ""
