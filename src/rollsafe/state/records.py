"""What the state holds: deploy records and lock holders, and who is deploying."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DeployRecord", "LockInfo", "ci_job_url", "who_am_i"]


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def who_am_i(cwd: Path | None = None) -> tuple[str, str | None]:
    """(OS user, git commit of ``cwd`` if it is a checkout)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid-{os.getuid()}"
    return user, _git_commit(cwd or Path.cwd())


def ci_job_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI job this process runs in, where the CI tells it: GitHub Actions, GitLab CI or
    Cloud Build (``BUILD_ID``, with ``PROJECT_ID`` for its console URL); None elsewhere."""
    env = os.environ if environ is None else environ
    server, repo, run = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    )
    if server and repo and run:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    build = env.get("BUILD_ID")
    if build:
        project = env.get("PROJECT_ID")
        base = f"https://console.cloud.google.com/cloud-build/builds/{build}"
        return f"{base}?project={project}" if project else base
    return None


@dataclass
class DeployRecord:
    """One deploy attempt (or rollback, or broken lock), as the journal holds it."""

    id: str
    env: str
    service: str
    user: str
    host: str
    pid: int
    checks: str
    stage: str
    started: float
    git_commit: str | None = None
    image: str | None = None
    revision: str | None = None
    previous_revision: str | None = None
    previous_split: dict[str, int] = field(default_factory=dict)
    forced: bool = False
    reason: str | None = None
    findings: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None
    exit_code: int | None = None
    message: str | None = None
    rollback: dict[str, Any] | None = None
    finished: float | None = None
    #: what undoes this attempt's changes (``deploy.stages.Compensation.to_dict``), written
    #: before the stage that makes them; None while nothing was changed
    compensation: dict[str, Any] | None = None
    #: the CI job that ran it (``ci_job_url``), if any
    ci_url: str | None = None
    #: the writer's liveness token (``StateStore.session``): while it is alive the attempt
    #: is running; None for records written before it existed (host and pid decide)
    session: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.outcome is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``history --format json``."""
        return {
            "id": self.id,
            "env": self.env,
            "service": self.service,
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "git_commit": self.git_commit,
            "ci_url": self.ci_url,
            "image": self.image,
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "previous_split": self.previous_split,
            "checks": self.checks,
            # --force was given (past failing checks, skipped checks or an unhealthy service)
            "forced": self.forced or self.checks == "forced",
            "reason": self.reason,
            "findings": self.findings,
            "stage": self.stage,
            "stages": self.stages,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "message": self.message,
            "rollback": self.rollback,
            "compensation": self.compensation,
            "started": self.started,
            "finished": self.finished,
        }

    def to_row(self) -> dict[str, Any]:
        """Every field, as stored (``from_row`` reads it back): ``to_dict`` plus the raw
        ``forced`` flag and the session."""
        row = self.to_dict()
        row["forced"] = self.forced
        row["session"] = self.session
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeployRecord:
        """A record from ``to_row``'s shape; unknown keys are ignored, missing ones default."""
        names = cls.__dataclass_fields__
        data = {k: v for k, v in row.items() if k in names}
        data["findings"] = data.get("findings") or {}
        data["stages"] = data.get("stages") or []
        data["previous_split"] = data.get("previous_split") or {}
        data["forced"] = bool(data.get("forced"))
        return cls(**data)


@dataclass(frozen=True)
class LockInfo:
    """The holder of one deploy lock (environment and service)."""

    env: str
    service: str
    deploy_id: str
    user: str
    host: str
    pid: int
    since: float
    ci_url: str | None = None
    #: the holder's liveness token (``StateStore.session``)
    session: str | None = None
    #: False when the holder is gone and the lock is stale (``rollsafe unlock`` breaks it)
    held: bool = True

    def describe(self) -> str:
        """``deploy ID by USER on HOST (pid N, since HH:MM:SS UTC[, CI URL])`` (no
        ``deploy`` for a pseudo-service's holder, such as ``monitor-ID``)."""
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        ci = f", {self.ci_url}" if self.ci_url else ""
        # a pseudo-service (``@monitor``) is held by a process that is not a deploy
        holder = "" if self.service.startswith("@") else "deploy "
        return (
            f"{holder}{self.deploy_id} by {self.user} on {self.host} "
            f"(pid {self.pid}, since {since}{ci})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``rollsafe locks --format json``."""
        return {
            "env": self.env,
            "service": self.service,
            "deploy_id": self.deploy_id,
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "since": self.since,
            "ci_url": self.ci_url,
            "held": self.held,
        }
