"""StartupGuard in-process: modes, the config and auth phases, the log line, redaction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rollsafe.errors import UsageError
from rollsafe.rules import RuleRef
from rollsafe.startup import (
    ContractKey,
    DeterministicStartupError,
    JwtSecretSpec,
    ServiceContract,
    StartupGuard,
)
from tests.conftest import CANARY_JWT, CANARY_STRONG
from tests.startup.conftest import (
    CANARIES,
    WEAK_SECRET,
    contract_vars,
    manifest_vars,
    staging_values,
)


def guard_for(env: dict[str, str], **kwargs: Any) -> tuple[StartupGuard, list[str]]:
    lines: list[str] = []
    guard = StartupGuard.from_env(env, exit_process=False)
    guard._log = lines.append
    for key, value in kwargs.items():
        setattr(guard, key, value)
    return guard, lines


def _contract(strict: bool, **keys: ContractKey) -> ServiceContract:
    return ServiceContract("staging" if strict else "dev", strict, "api", keys)


def test_same_report_from_the_contract_and_from_the_manifest() -> None:
    bad = {**staging_values(), "SERVICE_SECRET": WEAK_SECRET, "OAUTH_REDIRECT_URI": "http://x/cb"}
    reports = []
    for rules in (manifest_vars(), contract_vars()):
        guard, _ = guard_for({**rules, **bad, "ROLLSAFE_STARTUP_MODE": "degraded"})
        reports.append(guard.run_checks())
    by_manifest, by_contract = reports
    assert by_manifest.to_dict(timing=False) == by_contract.to_dict(timing=False)
    assert {(p.key, p.rule) for p in by_manifest.failures} == {
        ("SERVICE_SECRET", "machine_secret"),
        ("OAUTH_REDIRECT_URI", "url"),
        ("OAUTH_REDIRECT_URI", "same_origin"),
    }
    assert by_manifest.context["source"].startswith("manifest:")
    assert by_contract.context["source"] == "ROLLSAFE_CONTRACT"


@pytest.mark.parametrize(
    ("env", "mode_var", "expected"),
    [
        ("staging", None, "fail_fast"),
        ("dev", None, "degraded"),
        ("staging", "degraded", "degraded"),
        ("dev", "FAIL-FAST", "fail_fast"),
    ],
    ids=["strict-default", "non-strict-default", "override-degraded", "override-spelling"],
)
def test_mode(env: str, mode_var: str | None, expected: str) -> None:
    environ = contract_vars(env)
    if mode_var:
        environ["ROLLSAFE_STARTUP_MODE"] = mode_var
    assert StartupGuard.from_env(environ, exit_process=False).mode == expected


def test_unknown_mode_fails_the_config_phase_and_fails_fast() -> None:
    guard, lines = guard_for({**contract_vars("dev"), "ROLLSAFE_STARTUP_MODE": "yolo"})
    assert guard.mode == "fail_fast"
    with pytest.raises(DeterministicStartupError) as info:
        guard.run_checks()
    first = info.value.failures[0]
    assert (first.key, first.rule) == ("ROLLSAFE_STARTUP_MODE", "one_of")
    assert json.loads(lines[0])["severity"] == "CRITICAL"
    with pytest.raises(UsageError):
        StartupGuard(None, mode="yolo")


@pytest.mark.parametrize(
    ("environ", "key", "words"),
    [
        ({}, "ROLLSAFE_MANIFEST", "no start-up contract"),
        ({"ROLLSAFE_CONTRACT": "{nope"}, "ROLLSAFE_CONTRACT", "not valid JSON"),
        ({"ROLLSAFE_MANIFEST": "/nonexistent/rollsafe.yaml"}, "ROLLSAFE_MANIFEST", "are not set"),
        (
            {
                "ROLLSAFE_MANIFEST": "/nonexistent.yaml",
                "ROLLSAFE_SERVICE": "b",
                "ROLLSAFE_ENV": "e",
            },
            "ROLLSAFE_MANIFEST",
            "manifest not found",
        ),
        (
            {**manifest_vars(), "ROLLSAFE_SERVICE": "frontend"},
            "ROLLSAFE_MANIFEST",
            "unknown service",
        ),
        ({**manifest_vars(), "ROLLSAFE_ENV": "prod"}, "ROLLSAFE_MANIFEST", "unknown environment"),
    ],
    ids=["nothing", "bad-json", "no-service-or-env", "no-file", "unknown-service", "unknown-env"],
)
def test_a_missing_or_bad_contract_fails_closed(
    environ: dict[str, str], key: str, words: str
) -> None:
    guard, lines = guard_for(environ)
    assert guard.mode == "fail_fast"
    with pytest.raises(DeterministicStartupError) as info:
        guard.run_checks()
    (problem,) = info.value.failures
    assert (problem.key, problem.rule) == (key, "contract")
    assert words in problem.message
    assert problem.hint
    assert len(lines) == 1


def test_run_checks_exits_3_by_default_under_from_env() -> None:
    environ = {**contract_vars(), **staging_values(), "SERVICE_SECRET": WEAK_SECRET}
    guard = StartupGuard.from_env(environ)
    lines: list[str] = []
    guard._log = lines.append
    with pytest.raises(SystemExit) as info:
        guard.run_checks()
    assert info.value.code == 3
    assert isinstance(info.value.__cause__, DeterministicStartupError)
    assert guard.state == "failed"
    line = json.loads(lines[0])
    assert (line["severity"], line["exit_code"], line["service"]) == ("CRITICAL", 3, "backend")


def test_non_strict_rule_failures_are_warnings_but_missing_values_block() -> None:
    contract = _contract(
        False,
        TOKEN=ContractKey("TOKEN", "secret", (RuleRef("machine_secret"),), "token-dev"),
        MODE=ContractKey("MODE", "env", (RuleRef("one_of", ("a", "b")),)),
    )
    lines: list[str] = []
    guard = StartupGuard(contract, environ={"TOKEN": WEAK_SECRET, "MODE": "c"}, log=lines.append)
    report = guard.run_checks()
    assert report.ok
    assert {(w.key, w.rule, w.severity.value) for w in report.warnings} == {
        ("TOKEN", "machine_secret", "warning"),
        ("MODE", "one_of", "warning"),
    }
    assert json.loads(lines[0])["severity"] == "WARNING"
    guard = StartupGuard(contract, environ={"MODE": "a"}, log=lines.append)
    report = guard.run_checks()
    assert guard.mode == "degraded"
    assert not report.ok
    (problem,) = report.failures
    assert (problem.key, problem.rule, problem.message) == ("TOKEN", "required", "is not set")
    assert "token-dev" in problem.hint  # says which secret to map
    assert guard.state == "degraded"


def test_same_origin_reads_the_process_env_and_differs_from_is_left_to_check() -> None:
    contract = _contract(
        True,
        FRONTEND_URL=ContractKey("FRONTEND_URL", "env"),
        CALLBACK=ContractKey("CALLBACK", "env", (RuleRef("same_origin", "FRONTEND_URL"),)),
        KEY=ContractKey("KEY", "secret", (RuleRef("differs_from", "production"),)),
    )
    environ = {"FRONTEND_URL": "https://app.example.com", "KEY": CANARY_STRONG}
    lines: list[str] = []
    good = StartupGuard(
        contract, environ={**environ, "CALLBACK": "https://app.example.com/cb"}, log=lines.append
    )
    assert good.run_checks(exit_on_failure=False).ok
    bad = StartupGuard(
        contract, environ={**environ, "CALLBACK": "https://api.example.com/cb"}, log=lines.append
    )
    with pytest.raises(DeterministicStartupError) as info:
        bad.run_checks(exit_on_failure=False)
    assert [(p.key, p.rule) for p in info.value.failures] == [("CALLBACK", "same_origin")]


def test_auth_phase_resolves_the_jwt_secret() -> None:
    environ = {**contract_vars(), **staging_values()}
    guard, _ = guard_for(environ)
    report = guard.run_checks()
    result = report.result("auth", "jwt_secret")
    assert result is not None
    assert result.message == "signs tokens with JWT_SECRET_KEY (HS256)"
    assert guard.jwt_secret().reveal() == CANARY_JWT
    guard, _ = guard_for({**environ, "JWT_SECRET_STAGING": "short"})
    with pytest.raises(DeterministicStartupError) as info:
        guard.run_checks()
    assert info.value.report.failed_phase == "auth"
    assert [(p.key, p.rule) for p in info.value.failures] == [("JWT_SECRET_STAGING", "jwt_hmac")]


def test_secret_values_are_redacted_from_what_user_checks_say() -> None:
    environ = {**contract_vars(), **staging_values()}
    guard, lines = guard_for(environ)

    @guard.check("dependencies")
    def database() -> None:
        raise ConnectionError(f"could not log in as admin:{CANARY_STRONG}@db")

    with pytest.raises(DeterministicStartupError) as info:
        guard.run_checks()
    text = "\n".join(
        [*lines, str(info.value), repr(info.value), json.dumps(guard.report.to_dict())]
    )  # type: ignore[union-attr]
    assert "admin:[redacted]@db" in text
    for canary in CANARIES:
        assert canary not in text


def test_health_and_ready() -> None:
    environ = {**contract_vars(), **staging_values()}
    guard, _ = guard_for(environ)
    assert asyncio.run(guard.health())[0] == 503
    assert guard.ready() == (503, {"ready": False, "status": "starting"})
    calls: list[int] = []

    @guard.health_check
    def disk() -> dict[str, Any]:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk full")
        return {"free": "12G"}

    guard.run_checks()
    status, body = asyncio.run(guard.health())
    assert (status, body["status"], body["checks"]) == (200, "healthy", {"disk": {"free": "12G"}})
    assert guard.ready()[0] == 200
    status, body = asyncio.run(guard.health())
    assert (status, body["phase"]) == (503, "runtime")
    assert body["failures"][0]["message"] == "OSError: disk full"


def test_install_needs_starlette_or_fastapi() -> None:
    guard = StartupGuard(None)
    with pytest.raises(UsageError):
        guard.install(object())


def test_contract_with_jwt_but_no_auth_phase() -> None:
    from rollsafe.startup import StartupSequence

    contract = ServiceContract("dev", False, "api", {}, JwtSecretSpec(("JWT_SECRET_KEY",)))
    guard = StartupGuard(
        contract, environ={}, sequence=StartupSequence(phases=["config"]), log=[].append
    )
    assert guard.run_checks().ok
    with pytest.raises(UsageError):
        StartupGuard(contract, sequence=StartupSequence(phases=["dependencies"]))
