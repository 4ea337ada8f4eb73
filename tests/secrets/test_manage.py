"""The library behind `rollsafe secret`, on the in-memory twin (the emulator: test_secret_cli)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.errors import UsageError
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.secrets import (
    SecretRefusedError,
    change_state,
    read_value,
    rotate_secret,
    secret_statuses,
    set_secret,
    writable,
)
from rollsafe.stores import DotenvSecretStore, InMemorySecretStore, VersionState
from tests.conftest import CANARY_STRONG

MANIFEST = """
version: 1
project: netra
environments:
  dev:  {platform: local, strict: false}
  prod: {platform: local, strict: true}
services:
  api:
    command: [python, app.py]
    secrets:
      TOKEN: {secret: "token-{env}", rules: [machine_secret]}
      OLD_TOKEN: {secret: "token-{env}", version: "1"}
"""


@pytest.fixture
def env(write: Callable[[str, str], Path]) -> Callable[[str], ResolvedEnvironment]:
    path = write("rollsafe.yaml", MANIFEST)
    return lambda name: load_manifest(path).resolve(name)


@pytest.mark.parametrize(
    ("data", "keep", "value"),
    [(b"v\n", False, b"v"), (b"v\r\n", False, b"v"), (b"v\n", True, b"v\n"), (b"v", False, b"v")],
    ids=["lf", "crlf", "keep", "none"],
)
def test_read_value(data: bytes, keep: bool, value: bytes) -> None:
    assert read_value(data, keep_newline=keep) == value


def test_set_then_rotate_on_the_twin(env: Callable[[str], ResolvedEnvironment]) -> None:
    store = InMemorySecretStore()
    first = set_secret(store, env("prod"), "token-{env}", CANARY_STRONG.encode())
    assert (first.secret, first.version, first.created) == ("token-prod", 1, True)
    assert first.warnings == (
        "api.OLD_TOKEN pins version 1; the new version is used once the manifest says so",
    )
    second = rotate_secret(store, env("prod"), "token-prod")
    assert (second.version, second.created) == (2, False)
    assert store.access("token-prod").reveal() != CANARY_STRONG
    assert CANARY_STRONG not in repr(first) + repr(second)


def test_strict_refuses_a_weak_value_and_writes_nothing(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    store = InMemorySecretStore()
    with pytest.raises(SecretRefusedError, match=r"api\.TOKEN: machine_secret"):
        set_secret(store, env("prod"), "token-prod", b"password1")
    assert store.list_secrets() == []
    result = set_secret(store, env("dev"), "token-dev", b"password1")
    assert any("machine_secret" in warning for warning in result.warnings)


def test_statuses_and_state_warnings(env: Callable[[str], ResolvedEnvironment]) -> None:
    store = InMemorySecretStore({"token-dev": [CANARY_STRONG, CANARY_STRONG + "2"], "x": "y"})
    statuses, others = secret_statuses(store, env("dev"))
    (status,) = statuses
    assert (status.secret, status.latest, status.enabled, status.problems) == (
        "token-dev",
        2,
        2,
        (),
    )
    assert status.used_by == ("api.TOKEN", "api.OLD_TOKEN@1")
    assert others == ["x"]
    assert change_state(store, env("dev"), "token-dev", 2, VersionState.DISABLED) == (
        "api.TOKEN reads version 2 (latest); new instances and the next deploy will fail to"
        " read it",
    )
    assert change_state(store, env("dev"), "token-dev", 2, VersionState.ENABLED) == ()
    change_state(store, env("dev"), "token-dev", 1, VersionState.DESTROYED)
    with pytest.raises(SecretRefusedError, match="destroyed"):
        change_state(store, env("dev"), "token-dev", 1, VersionState.ENABLED)


def test_a_dotenv_store_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text("a=1\n")
    with pytest.raises(UsageError, match="cannot be written"):
        writable(DotenvSecretStore(path))
