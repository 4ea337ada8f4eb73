"""The start-up contract: built from the manifest, JSON without values, read back exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rollsafe.cli import app
from rollsafe.manifest import load_manifest
from rollsafe.rules import RULES, parse_rule
from rollsafe.startup import ContractError, ServiceContract, contract_from_service, load_contract
from tests.startup.conftest import (
    EXAMPLE_MANIFEST,
    base_env,
    contract_vars,
    manifest_vars,
    staging_values,
)


def test_contract_of_the_example_in_staging() -> None:
    contract = contract_from_service(load_manifest(EXAMPLE_MANIFEST).resolve("staging"), "backend")
    data = contract.to_dict()
    assert (data["version"], data["env"], data["strict"], data["service"]) == (
        1,
        "staging",
        True,
        "backend",
    )
    assert data["keys"]["OAUTH_REDIRECT_URI"] == {
        "kind": "env",
        "rules": ["url", {"same_origin": "FRONTEND_URL"}],
    }
    assert data["keys"]["SERVICE_SECRET"] == {
        "kind": "secret",
        "secret": "service-secret-staging",
        "rules": ["machine_secret", "not_placeholder"],
    }
    assert data["keys"]["JWT_SECRET_KEY"]["rules"] == [{"jwt_hmac": "HS256"}, "not_placeholder"]
    assert data["jwt_secret"] == {
        "names": ["JWT_SECRET_STAGING", "JWT_SECRET_KEY"],
        "algorithm": "HS256",
    }
    assert ServiceContract.from_json(contract.to_json()) == contract
    assert "\n" not in contract.to_json()


def test_contract_holds_no_values(basic_manifest: Path) -> None:
    resolved = load_manifest(basic_manifest).resolve("staging")
    text = contract_from_service(resolved, "backend").to_json()
    values = [v.value for v in resolved.services["backend"].env.values()]
    assert "https://app.staging.example.com/auth/callback" in values
    for value in values:
        if value != "staging":  # ENVIRONMENT is the environment's name, which the contract has
            assert value not in text


def _rule_examples() -> list[Any]:
    cases = []
    for spec in RULES.values():
        for raw, _ in (*spec.passing, *spec.failing):
            cases.append(pytest.param(spec.name, raw, id=f"{spec.name}-{raw!r}"))
    return cases


@pytest.mark.parametrize(("name", "raw"), _rule_examples())
def test_every_rule_survives_the_round_trip(name: str, raw: Any) -> None:
    ref = parse_rule(name if raw is None else {name: raw})
    assert parse_rule(json.loads(json.dumps(ref.to_json()))) == ref


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[]", "must be a JSON object"),
        ('{"version": 2}', "version 2"),
        ('{"version": 1, "env": "dev", "service": "api"}', "strict (boolean)"),
        ('{"version": 1, "env": "d", "strict": false, "service": "a", "keys": []}', "keys must"),
        (
            '{"version": 1, "env": "d", "strict": false, "service": "a", "keys": {"K": {"kind": "x"}}}',
            "kind 'x'",
        ),
        (
            '{"version": 1, "env": "d", "strict": false, "service": "a", "keys": {"K": {"kind": "env", "rules": ["entropy"]}}}',
            "unknown rule 'entropy'",
        ),
        (
            '{"version": 1, "env": "d", "strict": false, "service": "a", "jwt_secret": {"names": []}}',
            "jwt_secret needs names",
        ),
    ],
    ids=[
        "not-object",
        "version",
        "no-strict",
        "keys-list",
        "bad-kind",
        "unknown-rule",
        "jwt-names",
    ],
)
def test_bad_contracts_are_named(text: str, words: str) -> None:
    with pytest.raises(ContractError) as info:
        ServiceContract.from_json(text)
    assert words in str(info.value)
    assert info.value.hint
    assert info.value.exit_code == 2


def test_the_contract_variable_wins_over_the_manifest() -> None:
    contract, source = load_contract({**manifest_vars("staging"), **contract_vars("dev")})
    assert (contract.env, source) == ("dev", "ROLLSAFE_CONTRACT")
    contract, source = load_contract(manifest_vars("staging"))
    assert (contract.env, source) == ("staging", f"manifest:{EXAMPLE_MANIFEST}")


def test_cli_prints_the_contract() -> None:
    result = CliRunner().invoke(
        app, ["contract", "-f", str(EXAMPLE_MANIFEST), "--env", "staging", "-s", "backend"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == json.loads(contract_vars("staging")["ROLLSAFE_CONTRACT"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--env", "staging", "-s", "frontend"], "unknown service 'frontend'"),
        (["--env", "prod", "-s", "backend"], "unknown environment 'prod'"),
    ],
    ids=["unknown-service", "unknown-env"],
)
def test_cli_contract_usage_errors(args: list[str], words: str) -> None:
    result = CliRunner().invoke(app, ["contract", "-f", str(EXAMPLE_MANIFEST), *args])
    assert result.exit_code == 2
    assert words in result.stderr


_PROBE = """
import json, sys
from rollsafe.startup import StartupGuard
guard = StartupGuard.from_env(exit_process=False)
guard._log = lambda line: None
report = guard.run_checks()
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pydantic", "yaml", "typer", "rich", "google", "starlette", "fastapi"})
inner = sorted(m for m in sys.modules if m.startswith(("rollsafe.manifest", "rollsafe.cli", "rollsafe.emulator", "rollsafe.check", "rollsafe.stores")))
print(json.dumps({"ok": report.ok, "heavy": heavy, "inner": inner}))
"""


@pytest.mark.parametrize(
    ("rules", "loads_manifest"),
    [(contract_vars, False), (manifest_vars, True)],
    ids=["contract-path", "manifest-path"],
)
def test_only_the_manifest_path_loads_pydantic_and_yaml(
    rules: Callable[[], dict[str, str]], loads_manifest: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**base_env(), **rules(), **staging_values()},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(done.stdout)
    assert data["ok"] is True
    if loads_manifest:
        assert {"pydantic", "yaml"} <= set(data["heavy"])
    else:
        assert data["heavy"] == []
        assert data["inner"] == []
