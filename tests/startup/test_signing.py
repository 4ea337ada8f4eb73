"""jwt_secret(): the first name set wins, jwt_hmac checks it, nothing shows the value."""

from __future__ import annotations

import hashlib

import pytest

from rollsafe.startup import ContractError, JwtSecret, JwtSecretError, jwt_secret
from tests.conftest import CANARY_JWT
from tests.startup.conftest import contract_vars, staging_values

OTHER = "Zq8Vn3TzK0xWb5LrF2mYc7HsJ9pDg4AeUk6NtQ1vZo_wXa"


@pytest.mark.parametrize(
    ("environ", "name", "tried"),
    [
        ({"JWT_SECRET_STAGING": OTHER, "JWT_SECRET_KEY": CANARY_JWT}, "JWT_SECRET_STAGING", 1),
        ({"JWT_SECRET_STAGING": "", "JWT_SECRET_KEY": CANARY_JWT}, "JWT_SECRET_KEY", 2),
        ({"JWT_SECRET_KEY": CANARY_JWT}, "JWT_SECRET_KEY", 2),
    ],
    ids=["env-specific-first", "empty-is-unset", "fallback"],
)
def test_first_name_set_wins(environ: dict[str, str], name: str, tried: int) -> None:
    key = jwt_secret(["JWT_SECRET_{ENV}", "JWT_SECRET_KEY"], env="staging", environ=environ)
    assert (key.name, key.algorithm, len(key.tried)) == (name, "HS256", tried)
    assert key.reveal() == environ[name]


def test_names_and_algorithm_from_the_contract() -> None:
    key = jwt_secret(environ={**contract_vars(), **staging_values()})
    assert (key.name, key.tried) == ("JWT_SECRET_KEY", ("JWT_SECRET_STAGING", "JWT_SECRET_KEY"))
    environ = {**contract_vars(), **staging_values(), "JWT_SECRET_KEY": "staging-jwt-key-2024"}
    with pytest.raises(JwtSecretError) as info:
        jwt_secret(environ=environ)
    assert info.value.problems[0].rule == "jwt_hmac"
    assert "staging-jwt-key-2024" not in str(info.value) + repr(info.value)
    warned = jwt_secret(environ={**contract_vars("dev"), "JWT_SECRET_KEY": "staging-jwt-key-2024"})
    assert warned.warnings[0].severity.value == "warning"


def test_none_set_is_required() -> None:
    with pytest.raises(JwtSecretError) as info:
        jwt_secret(["A_KEY", "B_KEY"], environ={})
    (problem,) = info.value.problems
    assert (problem.key, problem.rule) == ("A_KEY", "required")
    assert "A_KEY, B_KEY" in problem.message


def test_bad_requests() -> None:
    with pytest.raises(ContractError):
        jwt_secret([], environ={})
    with pytest.raises(ContractError):
        jwt_secret(["K"], algorithm="RS256", environ={"K": CANARY_JWT})
    with pytest.raises(ContractError):
        jwt_secret(environ={})  # no contract at all
    with pytest.raises(ContractError) as info:
        jwt_secret(
            environ={"ROLLSAFE_CONTRACT": '{"version":1,"env":"d","strict":false,"service":"a"}'}
        )
    assert "declares no jwt_secret" in str(info.value)


def test_the_value_never_shows() -> None:
    key = JwtSecret(CANARY_JWT, name="JWT_SECRET_KEY", algorithm="HS256")
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert CANARY_JWT not in text
        assert "JWT_SECRET_KEY" in text
    assert len(key) == len(CANARY_JWT)
    assert key.fingerprint() == hashlib.sha256(CANARY_JWT.encode()).hexdigest()[:8]
    assert not hasattr(key, "__dict__")
