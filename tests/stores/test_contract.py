"""One contract suite, run against every secret store adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollsafe.errors import StoreError
from rollsafe.stores import (
    DotenvSecretStore,
    InMemorySecretStore,
    InvalidSecretError,
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    WritableSecretStore,
    open_store,
)
from rollsafe.stores.secretmanager import SecretManagerStore

CANARY = "Zq8Canary4Lm2Xv7Rt1Np9Ks3Wb6Hd0Yf5"

StoreFactory = Callable[[dict[str, str], pytest.FixtureRequest], SecretStore]


def _memory(secrets: dict[str, str], request: pytest.FixtureRequest) -> SecretStore:
    return InMemorySecretStore(dict(secrets))


def _dotenv(secrets: dict[str, str], request: pytest.FixtureRequest) -> SecretStore:
    path = request.getfixturevalue("tmp_path") / "store.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return DotenvSecretStore(path)


def _secretmanager(secrets: dict[str, str], request: pytest.FixtureRequest) -> SecretStore:
    """Secret Manager of the emulator, a fresh project per test, filled through the adapter."""
    store = SecretManagerStore(
        request.getfixturevalue("project"), endpoint=request.getfixturevalue("emulator")
    )
    for name, value in secrets.items():
        store.create_secret(name)
        store.add_version(name, value)
    return store


@pytest.fixture(
    params=[_memory, _dotenv, _secretmanager], ids=["memory", "dotenv", "secretmanager"]
)
def store(request: pytest.FixtureRequest) -> Iterator[SecretStore]:
    factory = request.param
    with factory({"alpha": CANARY, "beta": "second-value"}, request) as opened:
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


WritableStore = WritableSecretStore


@pytest.fixture(params=["memory", "secretmanager"])
def writable(request: pytest.FixtureRequest) -> Iterator[WritableStore]:
    """A store that also writes, empty: the in-memory twin and Secret Manager behave alike."""
    opened: WritableStore
    if request.param == "memory":
        opened = InMemorySecretStore()
    else:
        opened = SecretManagerStore(
            request.getfixturevalue("project"), endpoint=request.getfixturevalue("emulator")
        )
    with opened:
        yield opened


def test_add_version_numbers_and_lists_oldest_first(writable: WritableStore) -> None:
    writable.create_secret("s")
    assert writable.list_versions("s") == []
    assert [writable.add_version("s", v) for v in ("one", "two", "three")] == [1, 2, 3]
    versions = writable.list_versions("s")
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[0].create_time <= versions[2].create_time
    assert writable.access("s").reveal() == "three"
    assert writable.access("s", "2").reveal() == "two"
    writable.create_secret("s")  # exists: no-op
    assert writable.add_version("new", "made") == 1  # creates the secret
    assert writable.list_secrets() == ["new", "s"]


def test_disabled_latest_does_not_fall_back(writable: WritableStore) -> None:
    writable.add_version("s", "old-value")
    writable.add_version("s", CANARY)
    writable.set_state("s", 2, VersionState.DISABLED)
    with pytest.raises(VersionUnavailableError, match="disabled") as info:
        writable.access("s")
    assert info.value.state is VersionState.DISABLED
    assert CANARY not in str(info.value)
    assert writable.access("s", "1").reveal() == "old-value"
    writable.set_state("s", 2, VersionState.ENABLED)
    assert writable.access("s").reveal() == CANARY


def test_destroyed_version_stays_listed_without_value(writable: WritableStore) -> None:
    writable.add_version("s", CANARY)
    writable.add_version("s", "kept")
    writable.set_state("s", 1, VersionState.DESTROYED)
    states = [(v.version, v.state) for v in writable.list_versions("s")]
    assert states == [(1, VersionState.DESTROYED), (2, VersionState.ENABLED)]
    with pytest.raises(VersionUnavailableError, match="destroyed") as info:
        writable.access("s", "1")
    assert info.value.state is VersionState.DESTROYED
    assert CANARY not in str(info.value)


def test_create_says_whether_it_created(writable: WritableStore) -> None:
    assert writable.create_secret("s", labels={"managed-by": "rollsafe"}) is True
    assert writable.create_secret("s") is False
    assert writable.list_secrets() == ["s"]


@pytest.mark.parametrize(
    "name",
    ["bad name", "x" * 256, "", "a/b", "dot.ted"],
    ids=["space", "long", "empty", "slash", "dot"],
)
def test_invalid_names_are_refused_on_write_and_missing_on_read(
    writable: WritableStore, name: str
) -> None:
    with pytest.raises(InvalidSecretError, match="not a valid secret name"):
        writable.create_secret(name)
    with pytest.raises(InvalidSecretError, match="not a valid secret name"):
        writable.add_version(name, CANARY)
    with pytest.raises(SecretNotFoundError):
        writable.access(name)
    with pytest.raises(SecretNotFoundError):
        writable.list_versions(name)
    assert writable.list_secrets() == []


def test_payload_limit_is_64_kib(writable: WritableStore) -> None:
    assert writable.add_version("big", b"x" * 65536) == 1
    with pytest.raises(InvalidSecretError) as info:
        writable.add_version("big", b"y" * 65537)
    assert "65537" in str(info.value)
    assert [v.version for v in writable.list_versions("big")] == [1]


def test_latest_of_a_secret_without_versions_is_not_found(writable: WritableStore) -> None:
    writable.create_secret("empty")
    with pytest.raises(SecretNotFoundError, match="no versions"):
        writable.access("empty")
    with pytest.raises(VersionNotFoundError):
        writable.access("empty", "1")


def test_state_changes_of_missing_things(writable: WritableStore) -> None:
    with pytest.raises(SecretNotFoundError):
        writable.set_state("nope", 1, VersionState.DISABLED)
    writable.add_version("s", CANARY)
    with pytest.raises(VersionNotFoundError):
        writable.set_state("s", 2, VersionState.DISABLED)
    with pytest.raises(VersionNotFoundError):
        writable.access("s", "0")


@pytest.mark.parametrize(
    "state",
    [VersionState.ENABLED, VersionState.DISABLED, VersionState.DESTROYED],
    ids=["enable", "disable", "destroy"],
)
def test_a_destroyed_version_never_changes_again(
    writable: WritableStore, state: VersionState
) -> None:
    writable.add_version("s", CANARY)
    writable.set_state("s", 1, VersionState.DESTROYED)
    with pytest.raises(VersionUnavailableError, match="destroyed") as info:
        writable.set_state("s", 1, state)
    assert info.value.state is VersionState.DESTROYED
    assert CANARY not in str(info.value)
    assert [v.state for v in writable.list_versions("s")] == [VersionState.DESTROYED]


def test_disabling_twice_and_enabling_an_enabled_version_are_fine(
    writable: WritableStore,
) -> None:
    writable.add_version("s", CANARY)
    writable.set_state("s", 1, VersionState.ENABLED)
    writable.set_state("s", 1, VersionState.DISABLED)
    writable.set_state("s", 1, VersionState.DISABLED)
    with pytest.raises(VersionUnavailableError, match="disabled"):
        writable.access("s", "1")


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
