"""One project with every kind of drift, made with Google's clients (see conftest.World).

Each service carries the drift its name says; ``clean`` carries none. The canaries are
values that must never appear in any output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CANARY_STRONG
from tests.drift.world import APPS, World, strong

#: weak on purpose, read by the serving revision of `weak` (must never be printed)
WEAK_CANARY = "canaryweak-password-9f3e"

BODY = f"""
  clean:
    command: [python, echo.py]
    workdir: {APPS}
    env: {{LOG_LEVEL: info}}
    secrets:
      API_KEY: {{secret: "api-key-{{env}}"}}
      PINNED: {{secret: "pinned-{{env}}", version: 2}}
  incident:
    env: {{FRONTEND_URL: "https://app.example.com"}}
    secrets:
      SERVICE_SECRET: {{secret: "service-secret-{{env}}"}}
      JWT_SECRET_KEY: {{secret: "jwt-secret-key-{{env}}", rules: [{{jwt_hmac: HS256}}]}}
    jwt_secret: {{names: [JWT_SECRET_KEY]}}
  mapping:
    secrets:
      WRONG: {{secret: "service-secret-{{env}}"}}
      PINNED: {{secret: "pinned-{{env}}", version: 2}}
      ROTATED: {{secret: "rotated-{{env}}"}}
      FLOATING: {{secret: "floating-{{env}}"}}
      DISABLED: {{secret: "disabled-{{env}}", version: 1}}
      DESTROYED: {{secret: "destroyed-{{env}}", version: 1}}
      DELETED: {{secret: "deleted-{{env}}"}}
  envs:
    env:
      LOG_LEVEL: info
      FRONTEND_URL: "https://app.example.com"
    secrets:
      API_KEY: {{secret: "api-key-{{env}}"}}
  weak:
    secrets:
      PASSWORD: {{secret: "weak-password-{{env}}", rules: [machine_secret]}}
"""

#: (kind, service, key) that must be found, with a test id
EXPECTED = [
    ("unmapped_secret", "incident", "JWT_SECRET_KEY", "unmapped-jwt"),
    ("wrong_secret", "mapping", "WRONG", "wrong-secret"),
    ("wrong_version", "mapping", "PINNED", "wrong-version-pinned"),
    ("wrong_version", "mapping", "ROTATED", "wrong-version-rotated"),
    ("stale_latest", "mapping", "FLOATING", "stale-latest"),
    ("missing_in_store", "mapping", "DISABLED", "missing-disabled"),
    ("missing_in_store", "mapping", "DESTROYED", "missing-destroyed"),
    ("missing_in_store", "mapping", "DELETED", "missing-deleted-secret"),
    ("missing_in_store", "mapping", "WRONG", "missing-mapped-other"),
    ("missing_in_store", "envs", "EXTRA_SECRET", "missing-unmanaged-mapping"),
    ("unmanaged_env", "envs", "EXTRA_FLAG", "unmanaged-plain"),
    ("unmanaged_env", "envs", "EXTRA_SECRET", "unmanaged-secret"),
    ("missing_env", "envs", "FRONTEND_URL", "missing-env"),
    ("value_mismatch", "envs", "LOG_LEVEL", "value-mismatch"),
    ("secret_as_plain_value", "envs", "API_KEY", "secret-as-plain"),
    ("orphan_secret", "*", "jwt-secret-dev", "orphan-incident-jwt"),
    ("weak_secret", "weak", "PASSWORD", "weak-secret"),
]


@dataclass
class Drifted:
    world: World
    manifest: Path

    @property
    def canaries(self) -> list[str]:
        return [*self.world.payloads, CANARY_STRONG]


def build(world: World, tmp: Path) -> Drifted:
    """Secrets, then services (every reference must exist for a revision to start), then
    the changes made behind the services' backs."""
    w = world
    w.add_secret("api-key-dev", strong())
    w.add_secret("pinned-dev", strong(), strong())
    w.add_secret("service-secret-dev", strong())
    w.add_secret("jwt-secret-key-dev", strong())
    w.add_secret("jwt-secret-dev", strong())  # the incident's: stored, never mapped
    w.add_secret("unrelated-config", strong())  # not named like dev's secrets: no orphan
    w.add_secret("other-dev", strong())
    for name in ("rotated-dev", "floating-dev", "disabled-dev", "destroyed-dev", "deleted-dev"):
        w.add_secret(name, strong())
    w.add_secret("weak-password-dev", WEAK_CANARY)

    w.create_service(
        "clean", {"LOG_LEVEL": "info"}, {"API_KEY": "api-key-dev:1", "PINNED": "pinned-dev:2"}
    )
    w.create_service(
        "incident",
        {"FRONTEND_URL": "https://app.example.com"},
        {"SERVICE_SECRET": "service-secret-dev:1"},
    )
    w.create_service(
        "mapping",
        secret_refs={
            "WRONG": "other-dev:1",
            "PINNED": "pinned-dev:1",
            "ROTATED": "rotated-dev:1",
            "FLOATING": "floating-dev:latest",
            "DISABLED": "disabled-dev:1",
            "DESTROYED": "destroyed-dev:1",
            "DELETED": "deleted-dev:1",
        },
    )
    w.create_service(
        "envs",
        {"LOG_LEVEL": "debug", "API_KEY": CANARY_STRONG, "EXTRA_FLAG": "on"},
        {"EXTRA_SECRET": "other-dev:1"},
    )
    w.create_service("weak", secret_refs={"PASSWORD": "weak-password-dev:1"})

    # behind the services' backs
    w.add_version("rotated-dev", strong())
    w.add_version("floating-dev", strong())
    w.disable("disabled-dev", 1)
    w.destroy("destroyed-dev", 1)
    w.delete("deleted-dev")
    w.disable("other-dev", 1)  # WRONG and EXTRA_SECRET map it: missing_in_store as well
    return Drifted(w, w.manifest(tmp, BODY))
