from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.errors import ManifestError, UsageError
from rollsafe.manifest import load_manifest


def test_resolves_env_templates_and_overrides(basic_manifest: Path) -> None:
    manifest = load_manifest(basic_manifest)
    staging = manifest.resolve("staging")
    svc = staging.services["backend"]
    assert staging.strict is True
    assert staging.gcp_project == "netra-staging"
    assert svc.env["ENVIRONMENT"].value == "staging"
    assert svc.env["FRONTEND_URL"].value == "https://app.staging.example.com"
    assert svc.secrets["SERVICE_SECRET"].reference == "service-secret-staging:latest"
    assert svc.command == ("python", "-m", "uvicorn", "app:app", "--port", "${PORT}")
    assert svc.health.timeout == 2.0

    dev = manifest.resolve("dev").services["backend"]
    assert dev.env["FRONTEND_URL"].value == "http://localhost:3000"
    # a bare override keeps the base's rules
    assert [r.name for r in dev.env["OAUTH_REDIRECT_URI"].rules] == ["same_origin"]
    assert dev.workdir == basic_manifest.parent / "app"


def test_secrets_get_not_placeholder_by_default(basic_manifest: Path) -> None:
    svc = load_manifest(basic_manifest).resolve("dev").services["backend"]
    assert [r.name for r in svc.secrets["SECRET_KEY"].rules] == ["not_placeholder"]
    assert [r.name for r in svc.secrets["SERVICE_SECRET"].rules] == [
        "machine_secret",
        "not_placeholder",
    ]


def test_lines_point_at_keys(basic_manifest: Path) -> None:
    svc = load_manifest(basic_manifest).resolve("staging").services["backend"]
    text = basic_manifest.read_text().splitlines()
    assert text[svc.secrets["JWT_SECRET_KEY"].line - 1].strip().startswith("JWT_SECRET_KEY:")
    assert text[svc.env["OAUTH_REDIRECT_URI"].line - 1].strip() == "OAUTH_REDIRECT_URI:"


def test_default_project_and_region(write: Callable[[str, str], Path]) -> None:
    path = write(
        "m.yaml",
        """
        version: 1
        project: shop
        environments: {dev: {}}
        """,
    )
    dev = load_manifest(path).resolve("dev")
    assert (dev.gcp_project, dev.region, dev.platform) == ("shop-dev", "us-central1", "local")


BAD = {
    "malformed-yaml": (
        "version: 1\nproject: [netra\nenvironments: {dev: {}}\n",
        3,
        "not valid YAML",
        None,
    ),
    "wrong-type": (
        "version: 1\nproject: netra\nenvironments:\n  dev: {strict: maybe}\n",
        4,
        "valid boolean",
        "environments.dev.strict",
    ),
    "unknown-key": (
        "version: 1\nproject: netra\nenvironments:\n  dev: {platfrom: local}\n",
        4,
        "unknown key 'platfrom'",
        "environments.dev.platfrom",
    ),
    "unknown-rule": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api:\n    secrets:\n"
        "      K: {secret: k, rules: [machine_secrets]}\n",
        7,
        "unknown rule 'machine_secrets'",
        "services.api.secrets.K.rules[0]",
    ),
    "bad-rule-argument": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api:\n    secrets:\n"
        "      K: {secret: k, rules: [{jwt_hmac: HS999}]}\n",
        7,
        "HS999",
        "services.api.secrets.K.rules[0]",
    ),
    "same-origin-nope": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api:\n    env:\n"
        "      A: x\n      B:\n        value: https://x.example.com\n"
        "        rules: [{same_origin: NOPE}]\n",
        8,
        "'NOPE'",
        "services.api.env.B",
    ),
    "missing-key": (
        "version: 1\nenvironments: {dev: {}}\n",
        1,
        "missing required key 'project'",
        "project",
    ),
    "duplicate-key": (
        "version: 1\nproject: a\nproject: b\nenvironments: {dev: {}}\n",
        3,
        "duplicate key 'project'",
        None,
    ),
    "override-unknown-env": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api:\n    overrides:\n"
        "      prod: {image: x}\n",
        7,
        "unknown environment 'prod'",
        "services.api.overrides.prod",
    ),
    "reserved-env-var": (
        "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api:\n    env:\n"
        "      PORT: '8080'\n",
        7,
        "set by Cloud Run",
        "services.api.env.PORT",
    ),
    "not-a-mapping": ("- just\n- a list\n", 1, "must be a mapping", None),
}


@pytest.mark.parametrize(("text", "line", "message", "key_path"), BAD.values(), ids=BAD.keys())
def test_bad_manifest_names_file_line_key_and_hint(
    write: Callable[[str, str], Path], text: str, line: int, message: str, key_path: str | None
) -> None:
    path = write("rollsafe.yaml", text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    err = info.value
    assert err.exit_code == 2
    assert err.file == str(path)
    assert err.line == line
    assert message in err.message
    if key_path is not None:
        assert err.key_path == key_path
    assert err.hint


def test_unknown_key_suggests_the_close_one(write: Callable[[str, str], Path]) -> None:
    path = write("rollsafe.yaml", "version: 1\nproject: p\nenvironments:\n  dev: {platfrom: x}\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.hint is not None
    assert "did you mean 'platform'" in info.value.hint


def test_all_problems_are_reported_at_once(write: Callable[[str, str], Path]) -> None:
    path = write(
        "rollsafe.yaml",
        "version: 1\nproject: p\nenvironments:\n  dev: {strict: maybe, regoin: x}\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert len(info.value.all) == 2


def test_unknown_environment_is_a_usage_error(basic_manifest: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_manifest(basic_manifest).resolve("stagin")
    assert info.value.exit_code == 2
    assert info.value.hint is not None
    assert "did you mean 'staging'" in info.value.hint


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert "not found" in info.value.message
    assert info.value.hint


_PUBLIC_MANIFEST = """
version: 1
project: p
environments: {dev: {}, staging: {}, production: {}}
services:
  api:
    public: true
    overrides:
      staging: {public: false}
  worker: {}
"""


@pytest.mark.parametrize(
    ("env", "service", "public"),
    [
        ("dev", "api", True),
        ("staging", "api", False),
        ("production", "api", True),
        ("dev", "worker", False),
    ],
    ids=["declared", "overridden", "inherited", "default-private"],
)
def test_public_defaults_to_private_and_overrides_per_environment(
    write: Callable[[str, str], Path], env: str, service: str, public: bool
) -> None:
    manifest = load_manifest(write("rollsafe.yaml", _PUBLIC_MANIFEST))
    assert manifest.resolve(env).services[service].public is public


def test_public_must_be_a_boolean(write: Callable[[str, str], Path]) -> None:
    text = "version: 1\nproject: p\nenvironments: {dev: {}}\nservices:\n  api: {public: maybe}\n"
    with pytest.raises(ManifestError) as info:
        load_manifest(write("rollsafe.yaml", text))
    assert "public" in str(info.value)


def test_json_schema_has_public() -> None:
    from rollsafe.manifest.schema import manifest_json_schema

    defs = manifest_json_schema()["$defs"]
    assert defs["Service"]["properties"]["public"]["type"] == "boolean"
    assert defs["Service"]["properties"]["public"]["default"] is False
    assert "public" in defs["ServiceOverride"]["properties"]
