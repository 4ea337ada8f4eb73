"""A deploy or a rollback in a process of its own that stops at a chosen point to be killed.

Run by the tests as ``python _child.py JSON``. When it reaches the point it prints
``paused STAGE`` and sleeps until it is killed:

- ``{"mode": "deploy", "pause": STAGE, "nth": N, "options": {...}}``: the Nth time the
  deploy announces ``DeployEvent("start", STAGE)``. The journal row of the stage is written
  before the listener is called, so a kill in that sleep is a kill during STAGE.
- ``{"mode": "rollback"}``: ``manual_rollback`` right after it moved the traffic, before it
  verified the revision it moved it to.

Nothing of rollsafe is replaced: the pause only delays the real code.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rollsafe.deploy import DeployEvent, DeployOptions, manual_rollback, run_deploy
from rollsafe.manifest import load_manifest
from rollsafe.platforms import ServiceInfo
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.state.journal import DeployJournal
from rollsafe.stores.secretmanager import SecretManagerStore

SERVICE = "backend"


def _pause(stage: str) -> None:
    print(f"paused {stage}", flush=True)
    time.sleep(600)
    raise SystemExit("not killed in time")


class _PauseAfterTraffic(CloudRunPlatform):
    def set_traffic(
        self, service: str, split: dict[str, int], tags: dict[str, str] | None = None
    ) -> ServiceInfo:
        info = super().set_traffic(service, split, tags)
        _pause("rollback")
        return info


def main(args: dict[str, Any]) -> None:
    env = load_manifest(Path(args["manifest"])).resolve(args.get("env", "staging"))
    endpoint = args["endpoint"]
    journal = DeployJournal(Path(args["state_dir"]))
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
    result = run_deploy(
        env,
        SERVICE,
        DeployOptions(**options),
        platform=CloudRunPlatform(env.gcp_project, env.region, endpoint=endpoint),
        store=SecretManagerStore(env.gcp_project, endpoint=endpoint),
        journal=journal,
        listener=listener,
    )
    raise SystemExit(f"the deploy ended without pausing: {result.exit_code} {result.message}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
