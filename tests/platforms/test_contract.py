"""One contract suite, run against every platform adapter (the in-memory twin and Cloud Run
through the official client against the emulator)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from rollsafe.platforms import (
    InMemoryPlatform,
    Platform,
    RevisionFailedError,
    RevisionSpec,
    SecretRef,
)

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
        platform.fail_revisions[revision] = "Container called exit(3)."

    yield Target(platform, _spec, fail)


def _cloudrun(endpoint: str) -> Iterator[Target]:
    from rollsafe.platforms.cloudrun import CloudRunPlatform

    failing: set[str] = set()

    def spec(service: str, revision: str, **extra: object) -> RevisionSpec:
        code = EXIT_3 if revision in failing else SERVE
        return _spec(service, revision, code, **extra)

    with CloudRunPlatform(f"contract-{next(_ids)}", "us-central1", endpoint=endpoint) as platform:
        yield Target(platform, spec, failing.add)


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
    assert "exit(3)" in info.value.message
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
