"""One contract suite, run against every secret store adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollsafe.errors import StoreError
from rollsafe.stores import (
    DotenvSecretStore,
    InMemorySecretStore,
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    VersionNotFoundError,
    VersionState,
    open_store,
)

CANARY = "Zq8Canary4Lm2Xv7Rt1Np9Ks3Wb6Hd0Yf5"

StoreFactory = Callable[[dict[str, str]], SecretStore]


def _memory(secrets: dict[str, str], tmp_path: Path) -> SecretStore:
    return InMemorySecretStore(dict(secrets))


def _dotenv(secrets: dict[str, str], tmp_path: Path) -> SecretStore:
    path = tmp_path / "store.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return DotenvSecretStore(path)


@pytest.fixture(params=[_memory, _dotenv], ids=["memory", "dotenv"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    factory = request.param
    with factory({"alpha": CANARY, "beta": "second-value"}, tmp_path) as opened:
        yield opened


def test_lists_secrets(store: SecretStore) -> None:
    assert store.list_secrets() == ["alpha", "beta"]


def test_lists_versions(store: SecretStore) -> None:
    (version,) = store.list_versions("alpha")
    assert (version.secret, version.version, version.state) == ("alpha", 1, VersionState.ENABLED)
    assert version.source == "sm://alpha/versions/1"


@pytest.mark.parametrize("version", ["latest", "1"], ids=["latest", "pinned"])
def test_access(store: SecretStore, version: str) -> None:
    value = store.access("alpha", version)
    assert value.reveal() == CANARY


def test_value_never_shows_itself(store: SecretStore) -> None:
    value = store.access("alpha")
    for shown in (repr(value), str(value), f"{value}", f"{value!r}", repr([value])):
        assert CANARY not in shown
    assert "redacted" in repr(value)


def test_missing_secret(store: SecretStore) -> None:
    with pytest.raises(SecretNotFoundError):
        store.access("nope")
    with pytest.raises(SecretNotFoundError):
        store.list_versions("nope")


def test_missing_version(store: SecretStore) -> None:
    with pytest.raises(VersionNotFoundError):
        store.access("alpha", "7")


def test_memory_store_follows_secret_manager_latest() -> None:
    store = InMemorySecretStore({"s": ["one", "two"]})
    assert store.access("s").reveal() == "two"
    store.set_state("s", 2, VersionState.DISABLED)
    # latest is the newest version even when disabled: Secret Manager does not fall back
    with pytest.raises(StoreError, match="disabled"):
        store.access("s")
    assert store.access("s", "1").reveal() == "one"


def test_dotenv_parses_comments_quotes_and_export(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text("# comment\n\nexport a=1\nb = 'two words'\nc=\"x=y\"\n")
    store = DotenvSecretStore(path)
    assert [store.access(n).reveal() for n in ("a", "b", "c")] == ["1", "two words", "x=y"]


def test_dotenv_bad_line_names_file_and_line_but_not_value(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text(f"ok=1\n{CANARY}\n")
    with pytest.raises(StoreError) as info:
        DotenvSecretStore(path)
    assert f"{path}:2" in str(info.value)
    assert CANARY not in str(info.value)


def test_open_store_spec(tmp_path: Path) -> None:
    (tmp_path / "x.env").write_text("a=1\n")
    assert isinstance(open_store("dotenv:x.env", base_dir=tmp_path), DotenvSecretStore)
    with pytest.raises(StoreError, match="not found"):
        open_store("dotenv:missing.env", base_dir=tmp_path)


def test_secret_value_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(SecretValue(CANARY))
