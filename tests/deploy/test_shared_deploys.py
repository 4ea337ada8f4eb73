"""Two checkouts sharing one PostgreSQL journal, as two CI runners would.

Each checkout is a folder of its own (the example manifest and backend) with a
``ROLLSAFE_HOME`` of its own, holding a copy of the session emulator's run file so both
deploy to the same emulated project. Every command runs as a real process with the
checkout as its working directory; the database is the test cluster (``postgres_url``),
its password given through ``PGPASSWORD`` only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollsafe.deploy import CANDIDATE_TAG, service_status
from rollsafe.emulator.server import RUN_FILE
from tests._postgres import PostgresCluster
from tests.deploy.conftest import ENV, SERVICE, Site, paused_child, sigkill, write_manifests

_CLI = "import sys; from rollsafe.cli import main; sys.argv[0] = 'rollsafe'; main()"


@dataclass
class Checkout:
    """One machine's checkout: its folder (the cwd), manifest and ``ROLLSAFE_HOME``."""

    name: str
    root: Path
    manifest: Path
    home: Path
    environ: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rollsafe ARGS -f MANIFEST`` in a process of its own, in this checkout."""
        argv = [sys.executable, "-c", _CLI, args[0], "-f", str(self.manifest), *args[1:]]
        return subprocess.run(
            argv,
            cwd=self.root,
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _checkout(site: Site, name: str, emulator_dir: Path, environ: dict[str, str]) -> Checkout:
    root = site.root / name
    root.mkdir()
    manifest, _ = write_manifests(root, site.env.gcp_project)
    home = site.root / f"{name}-home"
    home.mkdir()
    shutil.copy2(emulator_dir / RUN_FILE, home / RUN_FILE)
    return Checkout(name, root, manifest, home, {**environ, "ROLLSAFE_HOME": str(home)})


@pytest.fixture
def checkouts(
    site: Site, emulator_dir: Path, postgres_url: str, postgres_password: str
) -> tuple[Checkout, Checkout]:
    shared = {"ROLLSAFE_STATE": postgres_url, "PGPASSWORD": postgres_password}
    return _checkout(site, "a", emulator_dir, shared), _checkout(site, "b", emulator_dir, shared)


def _child_args(checkout: Checkout, **args: Any) -> dict[str, Any]:
    return {
        "manifest": str(checkout.manifest),
        "state": checkout.environ["ROLLSAFE_STATE"],
        "cwd": checkout.root,
        "environ": checkout.environ,
        **args,
    }


def _no_password_in(password: str, *texts: str) -> None:
    for text in texts:
        assert password not in text


def test_two_checkouts_exclude_each_other_share_history_and_reconcile_a_killed_deploy(
    site: Site, checkouts: tuple[Checkout, Checkout], postgres_password: str
) -> None:
    a, b = checkouts
    site.seed()
    first = b.run("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")
    assert first.returncode == 0, first.stderr + first.stdout
    base = site.split()
    args = _child_args(a, mode="deploy", pause="verify", options={"watch": 0})
    with paused_child(site, **args) as child:
        # A's deploy holds the lock: B's is refused and names it
        refused = b.run("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")
        assert refused.returncode == 1, refused.stdout
        assert "another deploy of backend to staging is running" in refused.stderr
        assert f"pid {child.pid}" in refused.stderr
        assert socket.gethostname() in refused.stderr
        (held,) = b.json("locks", "--env", ENV)["locks"]
        assert (held["service"], held["pid"], held["held"]) == (SERVICE, child.pid, True)
        assert held["deploy_id"] in refused.stderr
        assert site.split() == base
        sigkill(child)
        # its session died with it: the lock is free at once, no timeout waited for
        (stale,) = a.json("locks", "--env", ENV)["locks"]
        assert (stale["deploy_id"], stale["held"]) == (held["deploy_id"], False)
        text = a.run("locks", "--env", ENV)
        assert "stale" in text.stdout

    # not running any more, and not reconciled yet: history says so on either checkout
    (waiting,) = [r for r in b.json("history", "--env", ENV) if r["id"] == held["deploy_id"]]
    assert (waiting["outcome"], waiting["running"]) == (None, False)
    assert "interrupted during verify, not reconciled yet" in b.run("history", "--env", ENV).stdout

    # B's next deploy reconciles A's killed one (its candidate tag) and succeeds
    second = b.run("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")
    assert second.returncode == 0, second.stderr + second.stdout
    assert f"deploy {held['deploy_id']} (killed during verify)" in second.stdout
    assert CANDIDATE_TAG not in site.tags()
    assert site.get("/health").status_code == 200

    # either checkout's history shows every deploy of both
    seen_by_a = a.json("history", "--env", ENV)
    seen_by_b = b.json("history", "--env", ENV)
    assert [r["id"] for r in seen_by_a] == [r["id"] for r in seen_by_b]
    by_id = {r["id"]: r for r in seen_by_a}
    killed = by_id[held["deploy_id"]]
    assert (killed["outcome"], killed["pid"]) == ("interrupted", child.pid)
    assert killed["message"].startswith("reconciled:")
    outcomes = sorted(r["outcome"] for r in seen_by_a)
    assert outcomes == ["interrupted", "refused", "succeeded", "succeeded"]
    text = a.run("history", "--env", ENV)
    assert held["deploy_id"] in text.stdout
    _no_password_in(
        postgres_password,
        first.stdout + first.stderr,
        refused.stdout + refused.stderr,
        second.stdout + second.stderr,
        text.stdout + text.stderr,
        json.dumps(seen_by_a),
    )


def test_database_stopped_mid_deploy_spools_and_the_next_run_replays(
    site: Site,
    checkouts: tuple[Checkout, Checkout],
    postgres_cluster: PostgresCluster,
    postgres_password: str,
) -> None:
    a, _ = checkouts
    base = site.baseline()
    resume = site.root / "resume"
    args = _child_args(a, mode="deploy", pause="verify", options={"watch": 0}, resume=str(resume))
    with paused_child(site, **args) as child:
        (during,) = a.json("locks", "--env", ENV)["locks"]
        postgres_cluster.stop()
        resume.touch()
        assert child.stdout is not None
        out = child.stdout.read()
        assert child.wait(timeout=120) == 0, child.stderr_path.read_text()  # type: ignore[attr-defined]
        errors = child.stderr_path.read_text()  # type: ignore[attr-defined]
    # the deploy finished on the platform without its database
    result = json.loads(out.split("result ", 1)[1])
    assert (result["exit_code"], result["outcome"]) == (0, "succeeded"), result
    assert site.split() == {result["revision"]: 100}
    assert result["revision"] != base
    assert CANDIDATE_TAG not in site.tags()
    assert "the state store is unreachable" in errors
    spooled = list((a.home / "spool").glob("*.jsonl"))
    assert len(spooled) == 1
    assert result["deploy_id"] in spooled[0].read_text()

    # with the database back, the next run replays the spool before anything else
    postgres_cluster.start()
    shown = a.run("history", "--env", ENV, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert "replayed" in shown.stderr
    assert "spooled while DB was unreachable" in shown.stderr
    (record,) = [r for r in json.loads(shown.stdout) if r["id"] == during["deploy_id"]]
    assert (record["outcome"], record["exit_code"], record["stage"]) == ("succeeded", 0, "done")
    assert [s["stage"] for s in record["stages"]][-1] == "done"
    assert not spooled[0].exists()
    again = a.run("history", "--env", ENV)
    assert "replayed" not in again.stderr
    # the lock went with the session: free for the next deploy
    assert [lock["held"] for lock in a.json("locks", "--env", ENV)["locks"]] in ([], [False])
    _no_password_in(postgres_password, out, errors, shown.stdout + shown.stderr)
    for path in a.home.rglob("*"):
        if path.is_file():
            assert postgres_password.encode() not in path.read_bytes(), path


def test_status_leaves_a_running_deploy_alone_and_names_it(site: Site) -> None:
    site.baseline()
    with paused_child(site, mode="deploy", pause="verify", options={"watch": 0}) as child:
        (status,) = service_status(
            site.env, [SERVICE], platform=site.platform, journal=site.journal
        )
        assert status.reconciled == []
        assert status.reconcile_skipped is not None
        assert f"pid {child.pid}" in status.reconcile_skipped
        shown = site.cli("status", "--env", ENV)
        assert shown.exit_code == 0, shown.output
        assert "not reconciled: the lock is held by deploy" in shown.output
        (running,) = [r for r in site.journal.history(ENV, SERVICE) if r.in_progress]
        assert running.pid == child.pid
        sigkill(child)
    # the holder is gone: status takes the lock and reconciles
    (status,) = service_status(site.env, [SERVICE], platform=site.platform, journal=site.journal)
    assert len(status.reconciled) == 1
    assert status.reconcile_skipped is None
    assert site.journal.locks(ENV) == []


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("strict", [True, False], ids=["strict-refused", "non-strict-falls-back"])
def test_database_unreachable_at_the_start(
    site: Site, strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "PgCanaryUnreachable7f3a9c1e"
    monkeypatch.setenv("PGPASSWORD", canary)
    url = f"postgresql://rollsafe@127.0.0.1:{_closed_port()}/rollsafe"
    manifest = site.manifest
    if not strict:
        site.variant(
            "staging: {platform: local, strict: true", "staging: {platform: local, strict: false"
        )
        manifest = site.root / "variant.yaml"
    site.seed()
    done = site.cli(
        "deploy",
        "--env",
        ENV,
        "--service",
        SERVICE,
        "--watch",
        "0",
        "--state",
        url,
        manifest=manifest,
    )
    output = done.output
    assert canary not in output
    assert url in output  # named, redacted (it has no password to redact)
    if strict:
        assert done.exit_code == 1, output
        assert "nothing was changed" in output
        assert "strict" in output
        assert site.platform.get_service(SERVICE) is None
        return
    assert done.exit_code == 0, output
    assert "warning:" in output
    assert f"rollsafe state migrate --from sqlite:{site.state_dir / 'journal.sqlite3'}" in output
    (record,) = site.journal.history(ENV, SERVICE)
    assert record.outcome == "succeeded"
