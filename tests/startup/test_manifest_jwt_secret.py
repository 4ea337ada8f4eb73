"""The manifest's service-level ``jwt_secret``: {ENV} expansion, overrides, checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.errors import ManifestError
from rollsafe.manifest import load_manifest, manifest_json_schema

HEAD = """
version: 1
project: p
environments:
  dev: {}
  eu-west: {strict: true}
services:
  api:
"""


def test_env_expansion_and_override(write: Callable[[str, str], Path]) -> None:
    path = write(
        "rollsafe.yaml",
        HEAD
        + """
    jwt_secret: {names: ["JWT_SECRET_{ENV}", JWT_SECRET_KEY]}
    secrets:
      JWT_SECRET_KEY: {secret: "jwt-{env}"}
      JWT_SECRET_EU_WEST: {secret: "jwt-eu"}
    overrides:
      dev: {jwt_secret: {names: [JWT_SECRET_KEY], algorithm: HS512}}
""",
    )
    manifest = load_manifest(path)
    eu = manifest.resolve("eu-west").services["api"].jwt_secret
    assert eu is not None
    assert eu.names == ("JWT_SECRET_EU_WEST", "JWT_SECRET_KEY")
    assert (eu.algorithm, eu.line) == ("HS256", 9)
    dev = manifest.resolve("dev").services["api"].jwt_secret
    assert dev is not None
    assert (dev.names, dev.algorithm) == (("JWT_SECRET_KEY",), "HS512")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "    jwt_secret: {names: [JWT_A, JWT_B]}\n    secrets: {K: {secret: k}}\n",
            "none of which service 'api' declares",
        ),
        (
            '    jwt_secret: {names: ["JWT-{env}", K]}\n    secrets: {K: {secret: k}}\n',
            "not a valid environment variable name",
        ),
        (
            "    jwt_secret: {names: [K], algorithm: RS256}\n    secrets: {K: {secret: k}}\n",
            "HS256",
        ),
        ("    jwt_secret: {names: []}\n", "names"),
    ],
    ids=["undeclared", "bad-name", "bad-algorithm", "no-names"],
)
def test_bad_jwt_secret(write: Callable[[str, str], Path], body: str, words: str) -> None:
    path = write("rollsafe.yaml", HEAD + body)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    text = " ".join(str(e) + " " + (e.hint or "") for e in info.value.all)
    assert words in text
    assert info.value.line is not None


def test_schema_has_jwt_secret() -> None:
    schema = manifest_json_schema()
    assert "jwt_secret" in str(schema)
