"""A dotenv secret store for local use: ``secret-name=value`` lines, each one version ``1``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from rollsafe.errors import StoreError
from rollsafe.stores.base import (
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
)

__all__ = ["DotenvSecretStore", "parse_dotenv"]


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        inner = raw[1:-1]
        return inner.replace('\\"', '"').replace("\\n", "\n") if raw[0] == '"' else inner
    return raw


def parse_dotenv(text: str, *, file: str = "<dotenv>") -> dict[str, str]:
    """Parse ``NAME=value`` lines (``#`` comments, optional ``export``, quotes).

    Errors name the file and line but never the value.
    """
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not name or any(c.isspace() for c in name):
            raise StoreError(
                f"{file}:{number}: expected `secret-name=value`",
                hint="one secret per line; lines starting with # are comments",
            )
        if name in secrets:
            raise StoreError(
                f"{file}:{number}: secret '{name}' is defined twice",
                hint="keep one line per secret name",
            )
        secrets[name] = _unquote(value)
    return secrets


class DotenvSecretStore(SecretStore):
    """Reads a dotenv file once; every secret has the single version ``1``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"dotenv:{self.path}"
        try:
            text = self.path.read_text(encoding="utf-8")
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError as exc:
            raise StoreError(
                f"secret store file not found: {self.path}",
                hint="pass --store dotenv:PATH with an existing file",
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(
                f"cannot read secret store file {self.path} ({exc.__class__.__name__})",
                hint="check the path and its permissions; the file must be UTF-8 text",
            ) from exc
        self._created = datetime.fromtimestamp(mtime, UTC)
        self._values = {k: SecretValue(v) for k, v in parse_dotenv(text, file=str(path)).items()}

    def list_secrets(self) -> list[str]:
        return sorted(self._values)

    def list_versions(self, secret: str) -> list[SecretVersionInfo]:
        self._value(secret)
        return [SecretVersionInfo(secret, 1, VersionState.ENABLED, self._created)]

    def access(self, secret: str, version: str = "latest") -> SecretValue:
        value = self._value(secret)
        if version not in ("latest", "1"):
            raise VersionNotFoundError(
                f"secret '{secret}' has no version {version} in {self.description}",
                hint="a dotenv store holds one version of each secret: 1 (or latest)",
            )
        return value

    def _value(self, secret: str) -> SecretValue:
        try:
            return self._values[secret]
        except KeyError:
            raise SecretNotFoundError(
                f"secret '{secret}' not found in {self.description}"
            ) from None
