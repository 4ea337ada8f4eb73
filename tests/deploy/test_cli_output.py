"""`deploy` and `rollback` with `--format json`, and `history` as text, through the real CLI.

JSON mode: stdout is one document and nothing else (the whole of it parses), progress goes
to stderr, secrets appear as ``secret:version`` only.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.deploy.conftest import ENV, SERVICE, Site

DEPLOY = ("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0", "--format", "json")


def _document(site: Site, *args: str, **kwargs: Any) -> tuple[int, dict[str, Any], str]:
    result = site.cli(*args, **kwargs)
    for value in site.values:
        assert value not in result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_deploy_json_success(site: Site) -> None:
    added = site.seed()

    code, doc, stderr = _document(site, *DEPLOY)

    assert code == 0, doc
    assert doc["result"]["exit_code"] == 0
    assert set(doc["result"]) == {"exit_code", "outcome", "message", "hint"}
    names = [s["name"] for s in doc["stages"]]
    assert names[:2] == ["plan", "preflight"]
    assert "verify" in names
    assert all(s["ok"] for s in doc["stages"])
    assert all(isinstance(s["seconds"], float) for s in doc["stages"])
    assert set(doc["stages"][0]) == {"name", "ok", "seconds", "detail"}
    plan = doc["plan"]
    assert plan["revision"] == next(iter(site.split()))
    assert plan["secrets"] == {
        "SERVICE_SECRET": "service-secret-staging:1",
        "JWT_SECRET_KEY": "jwt-secret-key-staging:1",
        "SECRET_KEY": "secret-key-staging:1",
    }
    assert doc["check"]["ok"] is True
    assert doc["rollback"] is None
    assert doc["deploy_id"] == site.journal.history(ENV, SERVICE)[0].id
    assert "preflight" in stderr  # the progress, off stdout
    for value in added.values():
        assert value not in stderr


def test_deploy_json_refused_and_rolled_back(site: Site) -> None:
    serving = site.baseline()
    site.weaken()
    code, refused, _ = _document(site, *DEPLOY, manifest=site.incident_manifest)
    assert code == 1
    assert refused["result"]["exit_code"] == 1
    assert refused["result"]["hint"]
    assert [s["name"] for s in refused["stages"] if not s["ok"]] == ["preflight"]
    keys = {f["key"] for f in refused["check"]["findings"]}
    assert "SERVICE_SECRET" in keys

    site.seed()
    # a revision that starts, then answers 503 on /health: verification fails
    site.variant('ENVIRONMENT: "{env}"', 'ENVIRONMENT: "{env}"\n      BACKEND_FAIL_HEALTH: "1"')
    code, failed, _ = _document(site, *DEPLOY, manifest=site.root / "variant.yaml")
    assert code == 3
    assert failed["result"]["exit_code"] == 3
    assert failed["rollback"]["ok"] is True
    assert failed["rollback"]["to"] == {serving: 100}
    assert any(not s["ok"] for s in failed["stages"])
    assert site.split() == {serving: 100}


def test_rollback_json(site: Site) -> None:
    first = site.baseline()
    site.seed()
    assert site.deploy().exit_code == 0

    code, doc, _ = _document(
        site, "rollback", "--env", ENV, "--service", SERVICE, "--to", first, "--format", "json"
    )

    assert code == 0, doc
    assert doc["result"]["exit_code"] == 0
    assert [(s["name"], s["ok"]) for s in doc["stages"]][-1:] == [("rollback", True)]
    assert doc["rollback"]["to"] == {first: 100}
    assert doc["rollback"]["verified"] is True
    assert doc["plan"] is None
    assert site.split() == {first: 100}


def test_history_text_shows_commit_image_findings_and_stage_timings(site: Site) -> None:
    git = ["git", "-C", str(site.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    site.baseline()
    site.weaken()
    assert site.deploy(site.incident).exit_code == 1

    text = site.cli("history", "--env", ENV)

    assert text.exit_code == 0, text.output
    refused, succeeded = text.stdout.split("\n\n")[:2]
    (record, *_) = site.journal.history(ENV, SERVICE)
    assert record.id in refused
    assert f"commit {commit}" in refused
    assert f"image {record.image}" in refused
    assert f"findings: {record.findings['error']} error" in refused
    assert "preflight " in refused
    assert " s FAILED" in refused
    assert "findings: none" in succeeded
    for stage in ("plan", "preflight", "create", "verify"):
        assert f"{stage} " in succeeded
