"""The service's own state: not-ready revisions, restarting instances, traffic changed
outside rollsafe; on the in-memory platform and on the emulator."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest

from rollsafe.deploy.plan import ANNOTATION_DEPLOY_ID
from rollsafe.monitor.logs import LogEntryLine
from rollsafe.monitor.model import AlertName, Observation
from rollsafe.monitor.service_state import ServiceStateWatch, observe_service_state
from rollsafe.platforms.base import RevisionFailedError, RevisionSpec
from rollsafe.platforms.logs import SYSTEM_LOG
from rollsafe.platforms.memory import InMemoryPlatform
from tests.deploy.conftest import SERVICE, Site

NOT_READY = AlertName.REVISION_NOT_READY.value
RESTARTING = AlertName.INSTANCES_RESTARTING.value
OUTSIDE = AlertName.TRAFFIC_OUTSIDE_ROLLSAFE.value
_ids = itertools.count(1)


def _spec(revision: str, *, deploy_id: str | None = "d-1") -> RevisionSpec:
    annotations = {ANNOTATION_DEPLOY_ID: deploy_id} if deploy_id else {}
    return RevisionSpec("web", revision, image="img", annotations=annotations)


def _by_name(observations: list[Observation]) -> dict[str, Observation]:
    return {o.alertname: o for o in observations}


def _exit(at: float, code: int = 3, service: str = "web") -> LogEntryLine:
    return LogEntryLine(
        service,
        "web-2",
        SYSTEM_LOG,
        "WARNING",
        f"Container called exit({code}).",
        f"x{next(_ids)}",
        at,
    )


def test_a_rollsafe_deployed_healthy_service_is_ok() -> None:
    platform = InMemoryPlatform()
    platform.create_revision(_spec("web-1"))
    observed = observe_service_state(platform, "web", [], window=60.0, now=time.time())
    assert [o.alertname for o in observed] == [NOT_READY, RESTARTING, OUTSIDE]
    assert all(o.ok for o in observed)
    assert observe_service_state(platform, "nope", [], window=60.0, now=time.time()) == []


def test_a_failed_revision_is_not_ready_with_its_condition_as_evidence() -> None:
    platform = InMemoryPlatform()
    platform.create_revision(_spec("web-1"))
    platform.fail_revisions["web-2"] = InMemoryPlatform.not_ready_message("web-2")
    with pytest.raises(RevisionFailedError):
        platform.create_revision(_spec("web-2"))
    obs = _by_name(observe_service_state(platform, "web", [], window=60.0, now=time.time()))
    failing = obs[NOT_READY]
    assert not failing.ok
    assert failing.revision == "web-2"
    assert failing.evidence == ("run://web/web-2#Ready",)
    assert "is not ready and cannot serve traffic" in failing.description
    assert "serving: web-1" in failing.summary
    platform.create_revision(_spec("web-3"))  # the next good deploy clears it
    obs = _by_name(observe_service_state(platform, "web", [], window=60.0, now=time.time()))
    assert obs[NOT_READY].ok


def test_traffic_to_a_revision_without_the_deploy_id_is_outside_rollsafe() -> None:
    platform = InMemoryPlatform()
    platform.create_revision(_spec("web-1"))
    platform.create_revision(_spec("web-manual", deploy_id=None))
    assert _by_name(observe_service_state(platform, "web", [], window=60, now=1.0))[OUTSIDE].ok
    platform.set_traffic("web", {"web-1": 90, "web-manual": 10})
    obs = _by_name(observe_service_state(platform, "web", [], window=60, now=1.0))[OUTSIDE]
    assert not obs.ok
    assert obs.revision == "web-manual"
    assert obs.evidence == ("run://web/web-manual#traffic",)
    assert "web-manual 10%" in obs.summary


@pytest.mark.parametrize(
    ("ages", "restarting"),
    [((5, 10, 20), True), ((5, 10), False), ((5, 10, 90), False)],
    ids=["three-in-window", "two", "one-too-old"],
)
def test_instances_restarting_counts_exits_in_the_window(
    ages: tuple[int, ...], restarting: bool
) -> None:
    platform = InMemoryPlatform()
    platform.create_revision(_spec("web-1"))
    now = 1_000.0
    lines = [_exit(now - age) for age in ages]
    lines.append(_exit(now - 1, code=3, service="api"))  # another service's
    obs = _by_name(observe_service_state(platform, "web", lines, window=60.0, now=now))
    assert obs[RESTARTING].ok is not restarting
    if restarting:
        assert obs[RESTARTING].evidence == tuple(
            x.evidence for x in sorted(lines[:3], key=lambda x: x.at)
        )
        assert obs[RESTARTING].revision == "web-2"


def test_the_watch_keeps_exits_across_passes() -> None:
    platform = InMemoryPlatform()
    platform.create_revision(_spec("web-1"))
    watch = ServiceStateWatch()
    now = 1_000.0
    for n in range(3):
        obs = _by_name(watch.observe(platform, "web", [_exit(now + n)], window=60.0, now=now + n))
        assert obs[RESTARTING].ok is (n < 2)
    later = _by_name(watch.observe(platform, "web", [], window=60.0, now=now + 61))
    assert later[RESTARTING].ok
    platform.create_revision(_spec("web-manual", deploy_id=None))
    platform.set_traffic("web", {"web-manual": 100})
    assert not _by_name(watch.observe(platform, "web", [], window=60.0, now=now + 62))[OUTSIDE].ok


def test_on_the_emulator(site: Site) -> None:
    """A failed deploy leaves a revision not ready (the terminal condition says why), and
    traffic routed by hand to a revision rollsafe did not make is reported."""
    good = site.baseline()
    watch = ServiceStateWatch()
    obs = _by_name(watch.observe(site.platform, SERVICE, [], window=60.0, now=time.time()))
    assert all(o.ok for o in obs.values()), obs
    # the startup probe on /health gives up after 3 one-second attempts
    env = site.variant("interval: 0.1s}", "interval: 0.1s, startup: {failure_threshold: 3}}")
    failed = site.deploy(env, extra_env={"BACKEND_FAIL_HEALTH": "start"})
    assert failed.exit_code != 0
    assert site.service().terminal_failed
    obs = _by_name(watch.observe(site.platform, SERVICE, [], window=60.0, now=time.time()))
    assert not obs[NOT_READY].ok
    bad = obs[NOT_READY].revision
    assert bad is not None
    assert bad != good
    assert obs[NOT_READY].evidence == (f"run://{SERVICE}/{bad}#Ready",)
    assert "is not ready and cannot serve traffic" in obs[NOT_READY].description
    assert obs[OUTSIDE].ok
    # someone deploys with gcloud and routes traffic to it: no rollsafe.dev/deploy-id
    (current,) = [r for r in site.revisions() if r.name == good]
    spec = RevisionSpec(
        SERVICE,
        f"{SERVICE}-by-hand",
        command=("python", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "${PORT}"),
        workdir=str(site.root / "backend"),
        env=dict(current.env),
        secrets=dict(current.secrets),
        annotations={},
    )
    site.platform.create_revision(replace(spec))
    site.platform.set_traffic(SERVICE, {f"{SERVICE}-by-hand": 100})
    obs = _by_name(watch.observe(site.platform, SERVICE, [], window=60.0, now=time.time()))
    assert not obs[OUTSIDE].ok
    assert obs[OUTSIDE].revision == f"{SERVICE}-by-hand"
    assert obs[NOT_READY].ok  # the latest created revision is ready now
