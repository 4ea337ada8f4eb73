"""The drift engine's decisions, on the in-memory twins of the platform and the store."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.drift import (
    GOOGLE_READ_BUDGET,
    DriftReport,
    DriftUnavailableError,
    default_read_budget,
    naming_patterns,
    run_drift,
)
from rollsafe.drift._describe import CommandBuilder
from rollsafe.drift._observe import ReadPacer
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms import InMemoryPlatform, RevisionSpec, SecretRef
from rollsafe.startup.contract import CONTRACT_VAR, contract_from_service
from rollsafe.stores import InMemorySecretStore, VersionState
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.drift.world import strong

MANIFEST = """
version: 1
project: p
environments:
  dev: {strict: false}
  prod: {strict: true, gcp_project: p-prod, region: europe-west1}
services:
  api:
    env: {MODE: "fast,safe"}
    secrets:
      TOKEN: {secret: "token-{env}", rules: [machine_secret]}
"""


@pytest.fixture
def env(write: Callable[[str, str], Path]) -> Callable[[str], ResolvedEnvironment]:
    path = write("rollsafe.yaml", MANIFEST)
    manifest = load_manifest(path)
    return manifest.resolve


def _revision(name: str, secrets: dict[str, SecretRef], **env: str) -> RevisionSpec:
    return RevisionSpec(
        service="api", revision=name, env={"MODE": "fast,safe", **env}, secrets=secrets
    )


def _kinds(report: DriftReport) -> list[tuple[str, str, str]]:
    return [(f.kind.value, f.key, f.source) for f in report.findings]


def test_every_serving_revision_of_a_split_is_compared(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    store = InMemorySecretStore({"token-dev": [strong(), strong()]})
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "2")}))
    platform.create_revision(_revision("api-2", {"TOKEN": SecretRef("token-dev", "1")}))
    platform.set_traffic("api", {"api-1": 90, "api-2": 10})
    report = run_drift(env("dev"), store, platform)
    assert report.serving == {"api": {"api-1": 90, "api-2": 10}}
    assert _kinds(report) == [("wrong_version", "TOKEN", "run://api/api-2")]


def test_latest_pinned_to_the_newest_enabled_version_is_not_drift(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    # the newest version was disabled (a rotation taken back): version 1 is what serves
    store = InMemorySecretStore({"token-dev": [strong(), strong()]})
    store.set_state("token-dev", 2, VersionState.DISABLED)
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}))
    assert run_drift(env("dev"), store, platform).findings == []


def test_a_service_that_does_not_exist_is_not_deployed(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    report = run_drift(env("dev"), InMemorySecretStore(), InMemoryPlatform())
    assert [(f.kind.value, f.service) for f in report.findings] == [("not_deployed", "api")]
    assert report.exit_code == 1
    assert report.calls.to_dict()["run"] == {
        "get_service": 1,
        "list_revisions": 0,
        "get_iam_policy": 0,
    }


def test_the_start_up_contract_is_managed_and_compared(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    dev = env("dev")
    store = InMemorySecretStore({"token-dev": strong()})
    platform = InMemoryPlatform()
    good = contract_from_service(dev, "api").to_json()
    platform.create_revision(
        _revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}, **{CONTRACT_VAR: good})
    )
    assert run_drift(dev, store, platform).findings == []
    old = good.replace('"machine_secret"', '"not_placeholder"')
    assert old != good
    platform.create_revision(
        _revision("api-2", {"TOKEN": SecretRef("token-dev", "1")}, **{CONTRACT_VAR: old})
    )
    platform.set_traffic("api", {"api-2": 100})
    report = run_drift(dev, store, platform)
    assert _kinds(report) == [("value_mismatch", CONTRACT_VAR, "run://api/api-2")]


def test_weak_secret_is_an_error_in_strict_environments(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    store = InMemorySecretStore({"token-prod": "password123"})
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-prod", "1")}))
    (finding,) = run_drift(env("prod"), store, platform).findings
    assert (finding.kind.value, finding.severity.value) == ("weak_secret", "error")
    assert "password123" not in repr(finding.to_dict())


def test_orphans_only_when_every_service_is_compared(
    write: Callable[[str, str], Path],
) -> None:
    path = write(
        "rollsafe.yaml",
        MANIFEST + '  web:\n    secrets: {KEY: {secret: "web-key-{env}"}}\n',
    )
    dev = load_manifest(path).resolve("dev")
    store = InMemorySecretStore({"token-dev": strong(), "web-key-dev": strong()})
    store.add_version("jwt-secret-dev", strong())
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}))
    everything = run_drift(dev, store, platform)
    assert ("orphan_secret", "jwt-secret-dev") in [
        (f.kind.value, f.key) for f in everything.findings
    ]
    one = run_drift(dev, store, platform, services=["api"])
    assert one.findings == []  # web's references unknown here: no orphan is claimed


@pytest.mark.parametrize(
    ("names", "env", "matches", "misses"),
    [
        (
            ["jwt-secret-key-dev"],
            "dev",
            ["jwt-secret-dev", "a_b-dev"],
            ["dev", "jwt-devx", "device-dev2"],
        ),
        (["dev_db_password"], "dev", ["dev_api_key"], ["prod_db", "devices_x"]),
        (["app.dev.token"], "dev", ["other.dev.key"], ["other.dev", "dev.key"]),
        (["device-key", "shared"], "dev", [], ["x-dev", "device-key2"]),
    ],
    ids=["suffix", "prefix", "infix", "no-env-word"],
)
def test_naming_patterns(names: list[str], env: str, matches: list[str], misses: list[str]) -> None:
    patterns = naming_patterns(names, env)
    for name in matches:
        assert any(p.match(name) for p in patterns), name
    for name in misses:
        assert not any(p.match(name) for p in patterns), name


def test_fix_commands_quote_and_keep_commas(env: Callable[[str], ResolvedEnvironment]) -> None:
    cmd = CommandBuilder(env("prod"))
    line = cmd.update("api", update_env={"MODE": "fast,safe", "NAME": "it's"})
    assert line == (
        "gcloud run services update api --update-env-vars '^@^MODE=fast,safe@NAME=it'\"'\"'s' "
        "--region europe-west1 --project p-prod"
    )
    assert cmd.deploy("api").endswith("--env prod --service api")
    assert " -f " in cmd.deploy("api")  # a manifest that is not ./rollsafe.yaml is named


def test_an_unreachable_store_is_an_error_not_a_result(
    env: Callable[[str], ResolvedEnvironment],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}))
    with (
        SecretManagerStore("p", endpoint=f"http://127.0.0.1:{port}") as store,
        pytest.raises(DriftUnavailableError) as info,
    ):
        run_drift(env("dev"), store, platform)
    assert info.value.exit_code == 2


def test_read_pacer_keeps_to_its_budget_per_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = ReadPacer(3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.acquire()
        now[0] += 1.0
    assert slept == []
    pacer.acquire()  # the 4th read within 60 s waits for the 1st to leave the window
    assert slept == [57.0]
    now[0] += 60.0
    pacer.acquire()
    assert slept == [57.0]
    assert pacer.waited == 57.0
    with pytest.raises(ValueError, match="at least 1"):
        ReadPacer(0)


def test_the_read_budget_defaults_to_googles_quota_only(emulator: str) -> None:
    assert default_read_budget(SecretManagerStore("p")) == GOOGLE_READ_BUDGET < 600
    assert default_read_budget(SecretManagerStore("p", endpoint=emulator)) is None
    assert default_read_budget(InMemorySecretStore()) is None


def test_public_names() -> None:
    import rollsafe

    for name in ("run_drift", "DriftReport", "DriftFinding", "DriftKind", "DriftUnavailableError"):
        assert name in rollsafe.__all__
        assert getattr(rollsafe, name) is getattr(rollsafe.drift, name)


def test_a_contract_with_list_arguments_is_the_same_contract(
    write: Callable[[str, str], Path],
) -> None:
    # rule arguments are tuples in the contract and lists in its JSON: still no drift
    path = write(
        "rollsafe.yaml",
        MANIFEST.replace(
            "rules: [machine_secret]", "rules: [{char_classes: [lower, upper]}, {one_of: [a, b]}]"
        ),
    )
    dev = load_manifest(path).resolve("dev")
    store = InMemorySecretStore({"token-dev": "a"})
    platform = InMemoryPlatform()
    contract = contract_from_service(dev, "api").to_json()
    platform.create_revision(
        _revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}, **{CONTRACT_VAR: contract})
    )
    report = run_drift(dev, store, platform)
    assert [f.kind.value for f in report.findings] == ["weak_secret"]  # `a` has no upper case


@pytest.mark.parametrize(
    ("declared", "actual", "severity", "verb"),
    [(False, True, "error", "remove"), (True, False, "warning", "add")],
    ids=["open-but-private-in-manifest", "closed-but-public-in-manifest"],
)
def test_access_mismatch(
    write: Callable[[str, str], Path], declared: bool, actual: bool, severity: str, verb: str
) -> None:
    text = MANIFEST.replace(
        "  api:\n", f"  api:\n    overrides: {{prod: {{public: {str(declared).lower()}}}}}\n"
    )
    prod = load_manifest(write("rollsafe.yaml", text)).resolve("prod")
    assert prod.services["api"].public is declared
    store = InMemorySecretStore({"token-prod": [strong()]})
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-prod", "1")}))
    platform.set_public("api", actual)
    report = run_drift(prod, store, platform)
    (finding,) = report.of_kind("access_mismatch")
    assert finding.severity == severity
    assert finding.key == "public"
    assert finding.manifest == {"type": "access", "public": declared, "line": finding.line}
    assert finding.deployed == {"type": "access", "public": actual}
    assert finding.fix is not None
    assert finding.fix.rollsafe is None
    assert finding.fix.gcloud == (
        f"gcloud run services {verb}-iam-policy-binding api --member=allUsers "
        "--role=roles/run.invoker --region europe-west1 --project p-prod"
    )
    assert "never on an existing one" in finding.hint
    assert report.calls.to_dict()["run"]["get_iam_policy"] == 1
    # the access matches once the policy does: no finding
    platform.set_public("api", declared)
    assert run_drift(prod, store, platform).of_kind("access_mismatch") == []


def test_access_mismatch_renders_in_text_and_json(
    write: Callable[[str, str], Path],
) -> None:
    import json

    from rich.console import Console

    from rollsafe.drift import render_json, render_text

    store = InMemorySecretStore({"token-dev": [strong()]})
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}))
    platform.set_public("api", True)
    report = run_drift(
        load_manifest(write("rollsafe.yaml", MANIFEST)).resolve("dev"), store, platform
    )
    console = Console(record=True, width=400, soft_wrap=True)
    console.print(render_text(report))
    text = console.export_text()
    assert "public [access_mismatch] service api is public" in text
    assert "manifest: public: false (callers need an ID token)" in text
    assert "deployed: allUsers has roles/run.invoker: anyone may invoke" in text
    assert "fix:      gcloud run services remove-iam-policy-binding api --member=allUsers" in text
    (data,) = [
        f for f in json.loads(render_json(report))["findings"] if f["kind"] == "access_mismatch"
    ]
    assert data["fix"]["rollsafe"] is None
    assert data["fix"]["gcloud"].startswith("gcloud run services remove-iam-policy-binding api ")
    assert data["severity"] == "error"


def test_the_monitors_receiver_secrets_are_not_orphans(
    write: Callable[[str, str], Path],
) -> None:
    text = MANIFEST.replace(
        "dev: {strict: false}",
        'dev: {strict: false, alerts: [{type: webhook, url: {secret: "hook-key-{env}"}}]}',
    )
    dev = load_manifest(write("rollsafe.yaml", text)).resolve("dev")
    store = InMemorySecretStore({"token-dev": strong(), "hook-key-dev": "https://hooks.test/x"})
    store.add_version("jwt-secret-dev", strong())
    platform = InMemoryPlatform()
    platform.create_revision(_revision("api-1", {"TOKEN": SecretRef("token-dev", "1")}))
    orphans = [f.key for f in run_drift(dev, store, platform).findings if f.kind == "orphan_secret"]
    assert orphans == ["jwt-secret-dev"]  # the receiver's URL is used, by the monitor
