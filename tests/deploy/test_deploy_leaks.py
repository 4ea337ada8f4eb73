"""No secret value in any output of the deploy commands, the journal or the emulator's files.

Every value the test puts in the store is a canary: the strong ones the deploys run with
and the incident's weak ones (whose findings and start-up failure are printed).
"""

from __future__ import annotations

import base64
from pathlib import Path

from tests.deploy.conftest import ENV, SERVICE, Site

DEPLOY = ("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")


def _forms(value: str) -> list[bytes]:
    """The value as text and as the base64 a REST payload would carry."""
    raw = value.encode("utf-8")
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]


def test_no_secret_value_in_outputs_journal_or_state_files(site: Site, emulator_dir: Path) -> None:
    outputs: list[tuple[str, str]] = []

    def run(*args: str, manifest: Path | None = None, code: int = 0) -> None:
        result = site.cli(*args, manifest=manifest)
        assert result.exit_code == code, (args, result.output)
        outputs.append((" ".join(args), result.stdout + result.stderr + repr(result.exception)))

    site.seed()
    run(*DEPLOY)
    first = next(iter(site.split()))
    site.seed()
    run(*DEPLOY, "--dry-run")
    run(*DEPLOY, "--canary", "50,100")
    site.weaken()
    run(*DEPLOY, manifest=site.incident_manifest, code=1)
    run(*DEPLOY, "--force", "--reason", "leak test", manifest=site.incident_manifest, code=3)
    run("rollback", "--env", ENV, "--service", SERVICE, "--to", first)
    for fmt in ("text", "json"):
        run("status", "--env", ENV, "--format", fmt)
        run("history", "--env", ENV, "--format", fmt)

    canaries = site.values
    assert len(canaries) == 8  # 2 x 3 strong, 2 weak: the test is not vacuous
    for command, text in outputs:
        for value in canaries:
            assert value not in text, (command, "a secret value was printed")

    files = _files(site.state_dir, emulator_dir)
    # the files really hold this test's deploys (names and references, not values)
    journal = b"".join(p.read_bytes() for p in files if p.name.startswith("journal.sqlite3"))
    assert first.encode() in journal
    stored = b"".join(p.read_bytes() for p in files if p.name.startswith("emulator.sqlite3"))
    assert site.env.gcp_project.encode() in stored
    for path in files:
        data = path.read_bytes()
        for value in canaries:
            for form in _forms(value):
                assert form not in data, (str(path), "a secret value was stored")
