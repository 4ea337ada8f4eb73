"""A deploy or a rollback in a process of its own that stops at a chosen point to be killed.

Run by the tests as ``python _child.py JSON``. When it reaches the point it prints
``paused STAGE`` and sleeps until it is killed:

- ``{"mode": "deploy", "pause": STAGE, "nth": N, "options": {...}}``: the Nth time the
  deploy announces ``DeployEvent("start", STAGE)``. The journal row of the stage is written
  before the listener is called, so a kill in that sleep is a kill during STAGE.
- ``{"mode": "rollback"}``: ``manual_rollback`` right after it moved the traffic, before it
  verified the revision it moved it to.

With ``"resume": PATH`` the child does not wait to be killed: after ``paused STAGE`` it
waits until PATH exists, goes on, and prints the result as one JSON line (``result {...}``)
before it exits 0. With ``"state": SPEC`` the journal is the one ``rollsafe.state.resolve``
opens for SPEC (as ``--state`` would), in the child's own ``ROLLSAFE_HOME``; its warnings go
to stderr. Without it, ``"state_dir"``'s SQLite journal.

Nothing of rollsafe is replaced: the pause only delays the real code.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rollsafe.deploy import DeployEvent, DeployOptions, manual_rollback, run_deploy
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms import ServiceInfo
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.state.journal import DeployJournal
from rollsafe.state.resolve import open_journal
from rollsafe.stores.secretmanager import SecretManagerStore

SERVICE = "backend"
#: the file whose appearance ends a resumable pause (``"resume"``)
_RESUME: Path | None = None


def _pause(stage: str) -> None:
    print(f"paused {stage}", flush=True)
    if _RESUME is not None:
        deadline = time.monotonic() + 600
        while not _RESUME.exists():
            if time.monotonic() > deadline:
                raise SystemExit("not resumed in time")
            time.sleep(0.05)
        return
    time.sleep(600)
    raise SystemExit("not killed in time")


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _journal(env: ResolvedEnvironment, args: dict[str, Any]) -> Iterator[DeployJournal]:
    if "state" in args:
        with open_journal(env, option=args["state"], changes=True, on_warning=_warn) as journal:
            yield journal
        return
    with DeployJournal(Path(args["state_dir"])) as journal:
        yield journal


class _PauseAfterTraffic(CloudRunPlatform):
    def set_traffic(
        self, service: str, split: dict[str, int], tags: dict[str, str] | None = None
    ) -> ServiceInfo:
        info = super().set_traffic(service, split, tags)
        _pause("rollback")
        return info


def main(args: dict[str, Any]) -> None:
    global _RESUME
    env = load_manifest(Path(args["manifest"])).resolve(args.get("env", "staging"))
    _RESUME = Path(args["resume"]) if args.get("resume") else None
    with _journal(env, args) as journal:
        _run(env, journal, args)


def _run(env: ResolvedEnvironment, journal: DeployJournal, args: dict[str, Any]) -> None:
    endpoint = args["endpoint"]
    if args["mode"] == "rollback":
        platform = _PauseAfterTraffic(env.gcp_project, env.region, endpoint=endpoint)
        manual_rollback(env, SERVICE, to=None, platform=platform, journal=journal)
        raise SystemExit("the rollback ended without pausing")
    seen = 0

    def listener(event: DeployEvent) -> None:
        nonlocal seen
        if event.kind == "start" and event.stage == args["pause"]:
            seen += 1
            if seen == args.get("nth", 1):
                _pause(event.stage)

    options = dict(args.get("options", {}))
    if "canary" in options:
        options["canary"] = tuple(options["canary"])
    with (
        CloudRunPlatform(env.gcp_project, env.region, endpoint=endpoint) as platform,
        SecretManagerStore(env.gcp_project, endpoint=endpoint) as store,
    ):
        result = run_deploy(
            env,
            SERVICE,
            DeployOptions(**options),
            platform=platform,
            store=store,
            journal=journal,
            listener=listener,
        )
    if _RESUME is not None and seen:
        revision = result.plan.spec.revision if result.plan else None
        done = {"exit_code": result.exit_code, "outcome": str(result.outcome)}
        done |= {"message": result.message, "revision": revision}
        done["deploy_id"] = result.record.id if result.record else None
        print("result " + json.dumps(done), flush=True)
        return
    raise SystemExit(f"the deploy ended without pausing: {result.exit_code} {result.message}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
