"""Parsing state locations (``state:``, ``ROLLSAFE_STATE``, ``--state``) and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.errors import UsageError
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.spec import (
    StateSpec,
    open_state_store,
    parse_state_spec,
    password_in,
    redact_url,
    state_password,
)
from rollsafe.state.sqlite import SQLiteStateStore

SECRET = "S3cr3tCanaryPw"


def _parse(raw: str | None, tmp_path: Path, source: str = "--state") -> StateSpec:
    return parse_state_spec(
        raw, base_dir=tmp_path / "repo", state_dir=tmp_path / "repo" / ".rollsafe", source=source
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "repo/.rollsafe/journal.sqlite3"),
        ("sqlite", "repo/.rollsafe/journal.sqlite3"),
        ("SQLite", "repo/.rollsafe/journal.sqlite3"),
        ("sqlite:state/team.db", "repo/state/team.db"),
        ("sqlite:shared/", "repo/shared/journal.sqlite3"),
        ("sqlite:shared", "repo/shared/journal.sqlite3"),
        ("sqlite:existing.dir", "repo/existing.dir/journal.sqlite3"),
    ],
    ids=["default", "sqlite", "case", "file", "dir-slash", "dir-no-suffix", "existing-dir"],
)
def test_sqlite_locations(tmp_path: Path, raw: str | None, expected: str) -> None:
    (tmp_path / "repo" / "existing.dir").mkdir(parents=True)
    spec = _parse(raw, tmp_path)
    assert spec.kind == "sqlite"
    assert spec.path == tmp_path / expected
    assert spec.redacted == str(tmp_path / expected)


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    spec = _parse(f"sqlite:{tmp_path}/abs/j.sqlite3", tmp_path)
    assert spec.path == tmp_path / "abs" / "j.sqlite3"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://rollsafe@db.internal:5432/rollsafe",
        "postgres://rollsafe@db.internal/rollsafe?sslmode=require",
        "postgresql:///rollsafe?host=/var/run/postgresql",
    ],
    ids=["postgresql", "postgres-scheme", "unix-socket"],
)
def test_postgresql_urls(tmp_path: Path, url: str) -> None:
    spec = _parse(url, tmp_path)
    assert (spec.kind, spec.url, spec.redacted) == ("postgresql", url, url)


def test_memory(tmp_path: Path) -> None:
    assert _parse("memory", tmp_path) == StateSpec("memory")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (f"postgresql://ops:{SECRET}@db:5432/st", "postgresql://ops:***@db:5432/st"),
        (
            f"postgresql://db/st?user=ops&password={SECRET}&sslmode=require",
            "postgresql://db/st?user=ops&password=***&sslmode=require",
        ),
        (
            f"postgresql://ops:{SECRET}@db/st?PASSWORD={SECRET}",
            "postgresql://ops:***@db/st?PASSWORD=***",
        ),
        ("postgresql://ops@db/st", "postgresql://ops@db/st"),
        (f"host=db password={SECRET} user=ops", "host=db password=*** user=ops"),
        (f"host=db password='{SECRET} x' user=ops", "host=db password=*** user=ops"),
    ],
    ids=["userinfo", "query", "both", "none", "conninfo", "conninfo-quoted"],
)
def test_redaction(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert SECRET not in redact_url(url)
    assert password_in(url) is (SECRET in url and "host=" not in url)


def test_a_spec_never_shows_its_password(tmp_path: Path) -> None:
    spec = _parse(f"postgresql://ops:{SECRET}@db/st", tmp_path)
    assert spec.url is not None
    assert SECRET in spec.url  # kept, for the driver
    for text in (spec.redacted, str(spec), repr(spec), f"{spec}"):
        assert SECRET not in text


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("sqlite:", "names no path"),
        ("mysql://ops@db/st", "is not a state location"),
        (f"mysql://ops:{SECRET}@db/st", "is not a state location"),
        ("journal.sqlite3", "is not a state location"),
        (f"postgresql://ops:{SECRET}@db:notaport/st", "is not a valid PostgreSQL URL"),
        (f"postgresql://ops:{SECRET}@db/st name", "has a space"),
    ],
    ids=[
        "empty",
        "blank",
        "sqlite-no-path",
        "mysql",
        "mysql-password",
        "bare-file",
        "bad-port",
        "space",
    ],
)
def test_bad_values_name_their_source_and_never_the_password(
    tmp_path: Path, raw: str, why: str
) -> None:
    with pytest.raises(UsageError) as bad:
        _parse(raw, tmp_path, source="ROLLSAFE_STATE")
    text = str(bad.value)
    assert text.startswith("ROLLSAFE_STATE: ")
    assert why in text
    assert bad.value.hint is not None
    assert "postgresql://" in bad.value.hint
    assert SECRET not in text + bad.value.hint
    assert bad.value.exit_code == 2


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        ("postgresql://ops@db/st", {"ROLLSAFE_STATE_PASSWORD": "ci-secret"}, "ci-secret"),
        ("postgresql://ops@db/st", {"ROLLSAFE_STATE_PASSWORD": "ci", "PGPASSWORD": "pg"}, None),
        (f"postgresql://ops:{SECRET}@db/st", {"ROLLSAFE_STATE_PASSWORD": "ci"}, None),
        ("postgresql://ops@db/st", {}, None),
        ("postgresql://ops@db/st", {"ROLLSAFE_STATE_PASSWORD": ""}, None),
    ],
    ids=["secret", "pgpassword-wins", "url-wins", "none", "empty-secret"],
)
def test_which_password_is_passed_beside_the_url(
    url: str, environ: dict[str, str], expected: str | None
) -> None:
    assert state_password(url, environ) == expected


def test_open_state_store_opens_sqlite_and_memory(tmp_path: Path) -> None:
    with open_state_store(_parse("sqlite:j/", tmp_path)) as store:
        assert isinstance(store, SQLiteStateStore)
        assert store.location == str(tmp_path / "repo" / "j" / "journal.sqlite3")
    with open_state_store(_parse("memory", tmp_path)) as store:
        assert isinstance(store, MemoryStateStore)
