"""One contract suite, run against every platform adapter (the in-memory twin and Cloud Run
through the official client against the emulator)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from rollsafe.platforms import (
    ALL_USERS,
    INVOKER_ROLE,
    InMemoryPlatform,
    Platform,
    PlatformError,
    RevisionFailedError,
    RevisionSpec,
    SecretRef,
    StartupProbe,
)
from rollsafe.platforms.base import DEFAULT_STARTUP_PROBE

_ids = itertools.count(1)

SERVE = (
    "import os, http.server as h; "
    "h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)
EXIT_3 = "import sys; print('refusing to start: SERVICE_SECRET too weak', flush=True); sys.exit(3)"


@dataclass
class Target:
    platform: Platform
    spec: Callable[..., RevisionSpec]
    fail: Callable[[str], None]  # make the named revision fail to start
    #: a startup probe that fails for the named revision (its health is broken at start)
    unhealthy: Callable[[str], StartupProbe]


def _spec(service: str, revision: str, code: str = SERVE, **extra: object) -> RevisionSpec:
    return RevisionSpec(
        service=service,
        revision=revision,
        command=("python", "-c", code),
        env={"GREETING": "hello"},
        annotations={"rollsafe.dev/deploy-id": revision},
        **extra,  # type: ignore[arg-type]
    )


def _memory() -> Iterator[Target]:
    platform = InMemoryPlatform()

    def fail(revision: str) -> None:
        platform.fail_revisions[revision] = InMemoryPlatform.not_ready_message(revision)

    def unhealthy(revision: str) -> StartupProbe:
        fail(revision)
        return StartupProbe(path="/health", period=1, timeout=1, failure_threshold=2)

    yield Target(platform, _spec, fail, unhealthy)


def _cloudrun(endpoint: str) -> Iterator[Target]:
    from rollsafe.platforms.cloudrun import CloudRunPlatform

    failing: set[str] = set()

    def spec(service: str, revision: str, **extra: object) -> RevisionSpec:
        code = EXIT_3 if revision in failing else SERVE
        return _spec(service, revision, code, **extra)

    def unhealthy(revision: str) -> StartupProbe:
        # SimpleHTTPRequestHandler answers 404 for a file that does not exist
        return StartupProbe(path="/no-such-health", period=1, timeout=1, failure_threshold=2)

    with CloudRunPlatform(f"contract-{next(_ids)}", "us-central1", endpoint=endpoint) as platform:
        yield Target(platform, spec, failing.add, unhealthy)


@pytest.fixture(params=["memory", "cloudrun"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "memory":
        yield from _memory()
    else:
        yield from _cloudrun(request.getfixturevalue("emulator"))


def test_missing_service(target: Target) -> None:
    assert target.platform.get_service("nope") is None


def test_first_revision_takes_all_traffic(target: Target) -> None:
    info = target.platform.create_revision(target.spec("svc-a", "svc-a-00001"), tag="candidate")
    assert info.split() == {"svc-a-00001": 100}
    assert info.tags() == {"candidate": "svc-a-00001"}
    assert info.url
    assert info.tag_url("candidate")


def test_new_revision_gets_no_traffic_and_the_tag(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-b", "svc-b-00001"))
    info = platform.create_revision(target.spec("svc-b", "svc-b-00002"), tag="candidate")
    assert info.split() == {"svc-b-00001": 100}
    assert info.tags() == {"candidate": "svc-b-00002"}
    assert info.latest_ready_revision == "svc-b-00002"


def test_set_traffic_split_and_tags(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-c", "svc-c-00001"))
    platform.create_revision(target.spec("svc-c", "svc-c-00002"), tag="candidate")
    info = platform.set_traffic("svc-c", {"svc-c-00001": 50, "svc-c-00002": 50})
    assert info.split() == {"svc-c-00001": 50, "svc-c-00002": 50}
    assert info.tags() == {}
    info = platform.set_traffic("svc-c", {"svc-c-00002": 100}, {"previous": "svc-c-00001"})
    assert info.split() == {"svc-c-00002": 100}
    assert info.tags() == {"previous": "svc-c-00001"}


def test_failed_revision_leaves_traffic(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-d", "svc-d-00001"))
    target.fail("svc-d-00002")
    with pytest.raises(RevisionFailedError) as info:
        platform.create_revision(target.spec("svc-d", "svc-d-00002"), tag="candidate")
    # the platform's own words; what the container printed is in its logs only
    assert "is not ready and cannot serve traffic" in info.value.message
    assert "refusing to start" not in info.value.message
    assert info.value.revision == "svc-d-00002"
    service = platform.get_service("svc-d")
    assert service is not None
    assert service.split() == {"svc-d-00001": 100}


def test_revisions_keep_env_secret_refs_and_annotations(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-e", "svc-e-00001"))
    platform.create_revision(target.spec("svc-e", "svc-e-00002"))
    first, *rest = platform.list_revisions("svc-e")
    assert first.name == "svc-e-00002"
    assert [r.name for r in rest] == ["svc-e-00001"]
    assert first.ready
    assert first.env["GREETING"] == "hello"
    assert first.annotations["rollsafe.dev/deploy-id"] == "svc-e-00002"
    assert first.secrets == {}
    assert SecretRef("s", "1") == SecretRef("s", "1")


# -- access: services are private until allUsers gets the invoker role ---------------------


def test_new_service_is_private(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-f", "svc-f-00001"))
    assert ALL_USERS not in platform.get_invokers("svc-f")
    assert platform.is_public("svc-f") is False


def test_set_public_grants_and_takes_back_the_invoker_role(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-g", "svc-g-00001"))
    platform.set_public("svc-g", True)
    assert ALL_USERS in platform.get_invokers("svc-g")
    platform.set_public("svc-g", True)  # idempotent
    assert platform.is_public("svc-g")
    platform.set_public("svc-g", False)
    assert ALL_USERS not in platform.get_invokers("svc-g")
    platform.set_public("svc-g", False)
    assert not platform.is_public("svc-g")


def test_new_revisions_keep_the_policy(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-h", "svc-h-00001"))
    platform.set_public("svc-h", True)
    platform.create_revision(target.spec("svc-h", "svc-h-00002"), tag="candidate")
    platform.set_traffic("svc-h", {"svc-h-00002": 100})
    assert platform.is_public("svc-h")


def test_access_of_a_missing_service_is_refused(target: Target) -> None:
    with pytest.raises(PlatformError, match="not found"):
        target.platform.get_invokers("nope")
    with pytest.raises(PlatformError, match="not found"):
        target.platform.set_public("nope", True)


def test_set_public_keeps_other_bindings(emulator: str) -> None:
    """Other members of the invoker role and other roles survive a grant and a revoke."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    from rollsafe.platforms.cloudrun import CloudRunPlatform

    project = f"contract-{next(_ids)}"
    with CloudRunPlatform(project, "us-central1", endpoint=emulator) as platform:
        platform.create_revision(_spec("svc-i", "svc-i-00001"))
        client = run_v2.ServicesClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=emulator),
        )
        try:
            name = f"projects/{project}/locations/us-central1/services/svc-i"
            policy = client.get_iam_policy(request={"resource": name})
            policy.bindings.add(role=INVOKER_ROLE, members=["user:alice@example.com"])
            policy.bindings.add(role="roles/run.developer", members=["user:bob@example.com"])
            client.set_iam_policy(request={"resource": name, "policy": policy})
            platform.set_public("svc-i", True)
            assert platform.get_invokers("svc-i") == {ALL_USERS, "user:alice@example.com"}
            platform.set_public("svc-i", False)
            assert platform.get_invokers("svc-i") == {"user:alice@example.com"}
            roles = {
                b.role: set(b.members)
                for b in client.get_iam_policy(request={"resource": name}).bindings
            }
            assert roles["roles/run.developer"] == {"user:bob@example.com"}
        finally:
            client.transport.close()


# -- startup probes ------------------------------------------------------------------------


def test_startup_probe_is_reported_back_and_defaults_to_tcp(target: Target) -> None:
    platform = target.platform
    probe = StartupProbe(path="/", initial_delay=0, period=1, timeout=1, failure_threshold=5)
    platform.create_revision(target.spec("svc-p", "svc-p-00001"))
    platform.create_revision(target.spec("svc-p", "svc-p-00002", startup_probe=probe))
    second, first = platform.list_revisions("svc-p")
    assert second.ready
    assert second.startup_probe == probe
    # none declared: Cloud Run's default, a TCP probe on the container port
    assert first.startup_probe == DEFAULT_STARTUP_PROBE
    assert (first.startup_probe.path, first.startup_probe.port) == (None, 8080)


@pytest.mark.parametrize(
    "probe",
    [
        StartupProbe(path="/", period=2, timeout=5),
        StartupProbe(path="/", period=241, timeout=1),
        StartupProbe(path="/", initial_delay=241, period=1, timeout=1),
        StartupProbe(path="health", period=1, timeout=1),
    ],
    ids=["timeout-above-period", "period", "initial-delay", "path"],
)
def test_invalid_startup_probe_is_refused_before_any_change(
    target: Target, probe: StartupProbe
) -> None:
    assert probe.problems()
    with pytest.raises(PlatformError) as info:
        target.platform.create_revision(target.spec("svc-q", "svc-q-00001", startup_probe=probe))
    assert not isinstance(info.value, RevisionFailedError)
    assert target.platform.get_service("svc-q") is None


def test_revision_failing_its_startup_probe_never_takes_traffic(target: Target) -> None:
    platform = target.platform
    platform.create_revision(target.spec("svc-r", "svc-r-00001"))
    probe = target.unhealthy("svc-r-00002")
    with pytest.raises(RevisionFailedError) as info:
        platform.create_revision(
            target.spec("svc-r", "svc-r-00002", startup_probe=probe), tag="candidate"
        )
    assert "is not ready and cannot serve traffic" in info.value.message
    service = platform.get_service("svc-r")
    assert service is not None
    assert service.split() == {"svc-r-00001": 100}
    assert "candidate" not in service.tags()
    assert service.latest_ready_revision == "svc-r-00001"
    failed = next(r for r in platform.list_revisions("svc-r") if r.name == "svc-r-00002")
    assert (failed.ready, failed.failed) == (False, True)
