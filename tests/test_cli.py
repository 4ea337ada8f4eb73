"""The command line: output, formats and exit codes (CliRunner, real files)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from rollsafe.cli import app
from tests.conftest import EXAMPLES

INCIDENT = EXAMPLES / "incident"
INCIDENT_ARGS = [
    "check",
    "-f",
    str(INCIDENT / "rollsafe.yaml"),
    "--env",
    "staging",
    "--store",
    f"dotenv:{INCIDENT / 'staging.env'}",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_incident_check_exits_1_with_every_cause() -> None:
    code, out, _ = run(*INCIDENT_ARGS)
    assert code == 1
    for key in ("SERVICE_SECRET", "OAUTH_REDIRECT_URI", "JWT_SECRET_KEY"):
        assert key in out
    assert "blocked" in out


def test_incident_check_json_parses() -> None:
    code, out, _ = run(*INCIDENT_ARGS, "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    assert data["env"] == "staging"
    rules = {(f["key"], f["rule"]) for f in data["findings"]}
    assert {("SERVICE_SECRET", "machine_secret"), ("OAUTH_REDIRECT_URI", "same_origin")} <= rules
    assert ("JWT_SECRET_KEY", "jwt_hmac") in rules
    for finding in data["findings"]:
        assert set(finding) >= {"service", "key", "rule", "severity", "message", "hint", "source"}


def test_sarif_and_github_formats() -> None:
    code, out, _ = run(*INCIDENT_ARGS, "--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] > 0 for r in results)
    code, out, _ = run(*INCIDENT_ARGS, "--format", "github")
    assert code == 1
    assert out.startswith("::error file=")


def test_good_environment_exits_0(basic_manifest: Path) -> None:
    code, out, _ = run("check", "-f", str(basic_manifest), "--env", "staging")
    assert code == 0, out
    assert "no findings" in out


def test_bad_format_is_a_usage_error(basic_manifest: Path) -> None:
    code, _, err = run("check", "-f", str(basic_manifest), "--env", "dev", "--format", "xml")
    assert code == 2
    assert "xml" in err


def test_unknown_service_and_environment(basic_manifest: Path) -> None:
    code, _, err = run("check", "-f", str(basic_manifest), "--env", "dev", "--service", "backnd")
    assert code == 2
    assert "did you mean 'backend'" in err
    code, _, err = run("check", "-f", str(basic_manifest), "--env", "prod")
    assert code == 2
    assert "Error: unknown environment 'prod'" in err


BAD_INPUTS = {
    "malformed-yaml": ("version: 1\nproject: [p\n", None, ":3"),
    "wrong-type": ("version: 1\nproject: p\nenvironments: {dev: {strict: maybe}}\n", None, ":3"),
    "unknown-rule": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  a:\n    secrets:\n"
        "      K: {secret: k, rules: [entropy]}\n",
        None,
        ":7",
    ),
    "same-origin-nope": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  a:\n    env:\n"
        "      U: {value: 'https://x.io', rules: [{same_origin: NOPE}]}\n",
        None,
        ":7",
    ),
    "unreadable-store": (
        "version: 1\nproject: p\nenvironments: {dev: {store: 'dotenv:missing.env'}}\n"
        "services:\n  a:\n    secrets:\n      K: {secret: k}\n",
        None,
        "missing.env",
    ),
    "store-with-bad-line": (
        "version: 1\nproject: p\nenvironments: {dev: {store: 'dotenv:bad.env'}}\n"
        "services:\n  a:\n    secrets:\n      K: {secret: k}\n",
        "just-a-value-without-name\n",
        "bad.env:1",
    ),
}


@pytest.mark.parametrize(("text", "store", "where"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_without_traceback(
    write: Callable[[str, str], Path], text: str, store: str | None, where: str
) -> None:
    path = write("rollsafe.yaml", text)
    if store is not None:
        write("bad.env", store)
    code, out, err = run("check", "-f", str(path), "--env", "dev")
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("Error: ")
    assert where in err
    assert "hint:" in err


def test_secrets_string_exact(basic_manifest: Path) -> None:
    code, out, _ = run(
        "secrets-string", "-f", str(basic_manifest), "--env", "staging", "--service", "backend"
    )
    assert code == 0
    assert out == (
        "JWT_SECRET_KEY=jwt-secret-key-staging:latest,"
        "SECRET_KEY=secret-key-staging:latest,"
        "SERVICE_SECRET=service-secret-staging:latest\n"
    )


def test_secrets_string_resolve_pins_latest(
    basic_manifest: Path, write: Callable[[str, str], Path]
) -> None:
    code, out, _ = run(
        "secrets-string",
        *("-f", str(basic_manifest), "--env", "staging", "--service", "backend", "--resolve"),
    )
    assert code == 0
    assert out == (
        "JWT_SECRET_KEY=jwt-secret-key-staging:1,"
        "SECRET_KEY=secret-key-staging:1,"
        "SERVICE_SECRET=service-secret-staging:1\n"
    )


def test_secrets_string_resolve_fails_on_missing_secret(basic_manifest: Path) -> None:
    (basic_manifest.parent / "staging.env").write_text("service-secret-staging=x\n")
    code, _, err = run(
        "secrets-string",
        *("-f", str(basic_manifest), "--env", "staging", "-s", "backend", "--resolve"),
    )
    assert code == 1
    assert "not found" in err


def test_schema_validates_every_example_manifest(tmp_path: Path) -> None:
    code, out, _ = run("schema")
    assert code == 0
    schema = json.loads(out)
    manifests = sorted(EXAMPLES.rglob("rollsafe.yaml"))
    assert manifests
    for path in manifests:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "project": "p", "environments": {"d": {"x": 1}}}, schema)


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert out.startswith("rollsafe ")
    code, out, _ = run("--help")
    assert code == 0
    for command in ("check", "secrets-string", "schema"):
        assert command in out
