"""Plant canary secret values, run every command in every format, search every output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollsafe.cli import app

# Weak canaries fail rules (their findings are printed); strong ones pass.
WEAK = "canaryweak-password-9f3e"
SHORT_JWT = "Canary7jwtShort"
STRONG = "xK9cAnArY2mQ7vLp4Tz8Wb3Nf6Hd1Rs5Yg0Jc"
PLACEHOLDER = "changeme-canary-5b1d"
CANARIES = (WEAK, SHORT_JWT, STRONG, PLACEHOLDER)

MANIFEST = """
version: 1
project: p
environments:
  dev: {store: "dotenv:dev.env"}
  prod: {strict: true, store: "dotenv:prod.env"}
services:
  api:
    env:
      FRONTEND_URL: https://app.example.com
      CALLBACK: {value: "https://api.example.com/cb", rules: [url, {same_origin: FRONTEND_URL}]}
    secrets:
      A: {secret: "a-{env}", rules: [machine_secret, {char_classes: [lower, upper, digit, symbol]}]}
      B: {secret: "b-{env}", rules: [{jwt_hmac: HS512}, {min_length: 80}, {regex: "[a-z]+"}]}
      C: {secret: "c-{env}", rules: [{differs_from: dev}, {one_of: [red, green]}]}
      D: {secret: "d-{env}", rules: [not_placeholder, url]}
"""


@pytest.fixture
def manifest(write: Callable[[str, str], Path]) -> Path:
    for env in ("dev", "prod"):
        write(
            f"{env}.env",
            f"a-{env}={WEAK}\nb-{env}={SHORT_JWT}\nc-{env}={STRONG}\nd-{env}={PLACEHOLDER}\n",
        )
    return write("rollsafe.yaml", MANIFEST)


def _commands(path: Path) -> list[list[str]]:
    commands = []
    for env in ("dev", "prod"):
        for fmt in ("text", "json", "sarif", "github"):
            commands.append(["check", "-f", str(path), "--env", env, "--format", fmt])
        commands.append(["secrets-string", "-f", str(path), "--env", env, "-s", "api"])
        commands.append(["contract", "-f", str(path), "--env", env, "--service", "api"])
        commands.append(["secrets-string", "-f", str(path), "--env", env, "-s", "api", "--resolve"])
        for fmt in ("text", "json"):
            commands.append(["secret", "list", "-f", str(path), "--env", env, "--format", fmt])
            commands.append(
                ["secret", "versions", f"a-{env}", "-f", str(path), "--env", env, "--format", fmt]
            )
    commands.append(["schema"])
    return commands


def test_no_canary_in_any_output(manifest: Path) -> None:
    runner = CliRunner()
    ran = 0
    for args in _commands(manifest):
        result = runner.invoke(app, args)
        text = result.stdout + result.stderr + repr(result.exception)
        for canary in CANARIES:
            assert canary not in text, (args, canary)
        ran += 1
    assert ran == 23


def test_findings_were_really_produced(manifest: Path) -> None:
    # guard against a vacuous leak test: the canaries must have been judged
    result = CliRunner().invoke(
        app, ["check", "-f", str(manifest), "--env", "prod", "--format", "json"]
    )
    assert result.exit_code == 1
    for key in ("A", "B", "C", "D"):
        assert f'"key": "{key}"' in result.stdout
