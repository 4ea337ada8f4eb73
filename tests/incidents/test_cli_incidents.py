"""`rollsafe incidents` and `rollsafe why` through the real CLI: usage errors, no episode,
unknown ids, help, and a report on a recorded episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rollsafe.cli import app
from tests.conftest import CANARY_JWT, CANARY_STRONG
from tests.deploy.conftest import ENV, SERVICE, Site


def _flat(text: str) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(text.split())


def _run(manifest: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [args[0], "-f", str(manifest), *args[1:]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("why", "--since", "yesterday"), "--since 'yesterday': is neither an RFC 3339"),
        (("why", "--since", "1h", "--until", "2h"), "--until (2h) is not after --since (1h)"),
        (("why", "--until", "5m"), "--until needs --since"),
        (("why", "--since", "2026-12-06T09:00:00"), "has no time zone"),
        (
            ("why", "--incident", "INC-20261206-090000-backend", "--since", "1h"),
            "--incident and --since/--until cannot be combined",
        ),
        (("why", "--format", "pdf"), "--format 'pdf' is not one of markdown, json, html"),
        (("incidents", "--since", "3 days"), "--since '3 days': is neither"),
        (("why", "--since", "1h", "--service", "frontend"), "unknown service 'frontend'"),
    ],
    ids=[
        "bad-since",
        "until-before-since",
        "until-alone",
        "naive-time",
        "incident-and-since",
        "bad-format",
        "incidents-bad-since",
        "unknown-service",
    ],
)
def test_usage_errors_exit_2_with_a_hint(
    basic_manifest: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(basic_manifest, args[0], "--env", "staging", *args[1:])
    assert result.exit_code == 2, result.output
    assert message in _flat(result.stderr)
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_incidents_bad_format_is_a_usage_error(basic_manifest: Path) -> None:
    result = _run(basic_manifest, "incidents", "--env", "staging", "--format", "markdown")
    assert result.exit_code == 2
    assert "text, json" in result.output


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (
            "why",
            [
                "--incident",
                "--since",
                "--until",
                "markdown, json or html",
                "rollsafe why --env staging --since 30m --format json",
                "Exit 0 with a report; 1 when no incident was found",
            ],
        ),
        (
            "incidents",
            [
                "--since",
                "INC-YYYYMMDD-HHMMSS-SERVICE",
                "rollsafe incidents --env staging",
                "last 7 days",
            ],
        ),
    ],
    ids=["why", "incidents"],
)
def test_help_has_the_options_and_examples(command: str, words: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for word in words:
        assert word in _flat(result.output), word


def test_no_episode(site: Site) -> None:
    none = site.cli("why", "--env", ENV)
    assert none.exit_code == 1, none.output
    assert f"no incident found in {ENV} in the last 7 days" in _flat(none.stderr)
    assert "--since" in none.stderr

    unknown = site.cli("why", "--env", ENV, "--incident", "INC-20261206-090000-backend")
    assert unknown.exit_code == 2, unknown.output
    assert "unknown incident 'INC-20261206-090000-backend'" in _flat(unknown.stderr)
    assert "known incidents: none in the last 7 days" in _flat(unknown.stderr)

    listed = site.cli("incidents", "--env", ENV)
    assert listed.exit_code == 0, listed.output
    assert f"no incident found in {ENV} since" in listed.stdout
    empty = site.cli("incidents", "--env", ENV, "--format", "json")
    assert json.loads(empty.stdout)["episodes"] == []


def test_lists_an_episode_and_reports_on_it(site: Site) -> None:
    site.values += [CANARY_STRONG, CANARY_JWT]
    site.store.add_version("service-secret-staging", CANARY_STRONG)
    site.store.add_version("jwt-secret-key-staging", CANARY_JWT)
    # a deploy that failed, as the journal records one (no revision: it never started)
    record = site.journal.begin(
        env=ENV, service=SERVICE, checks="skipped", reason="hotfix", image=None, forced=True
    )
    site.journal.stage(record, "create")
    site.journal.stage_done(record, False, "Container called exit(3).")
    site.journal.finish(record, "failed", 3, "the new revision never became ready")

    listed = site.cli("incidents", "--env", ENV, "--format", "json")
    assert listed.exit_code == 0, listed.output
    (episode,) = json.loads(listed.stdout)["episodes"]
    assert episode["kinds"] == ["deploy"]
    assert episode["services"] == [SERVICE]
    assert episode["id"].startswith("INC-")
    assert episode["id"].endswith(f"-{SERVICE}")
    assert episode["sources"] == [f"journal:{record.id}/outcome"]
    text = site.cli("incidents", "--env", ENV)
    assert episode["id"] in text.stdout
    assert f"deploy {record.id} failed" in text.stdout

    path = site.root / "why.json"
    chosen = site.cli(
        "why", "--env", ENV, "--incident", episode["id"], "--format", "json", "-o", str(path)
    )
    assert chosen.exit_code == 0, chosen.output
    assert chosen.stdout.strip() == str(path)
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["summary"]["episode"]["id"] == episode["id"]
    sources = {e["source"] for e in report["evidence"]}
    assert f"journal:{record.id}/outcome" in sources
    assert f"journal:{record.id}/create" in sources
    assert {"what": f"Cloud Run service {SERVICE}", "why": "it does not exist (not deployed)"} in (
        report["unreadable"]
    )

    latest = site.cli("why", "--env", ENV)  # the most recent episode, as Markdown
    assert latest.exit_code == 0, latest.output
    assert latest.stdout.startswith("# ")
    page = site.cli("why", "--env", ENV, "--since", "10m", "--format", "html")
    assert page.exit_code == 0, page.output
    assert "<html" in page.stdout.lower()
    for result in (listed, text, chosen, latest, page):
        for value in site.values:
            assert value not in result.output
    for value in site.values:
        assert value not in path.read_text(encoding="utf-8")


def test_an_unreachable_state_store_is_a_source_not_read(site: Site) -> None:
    down = "postgresql://rollsafe@127.0.0.1:1/rollsafe"  # nothing listens on port 1
    result = site.cli("why", "--env", ENV, "--since", "5m", "--format", "json", "--state", down)
    assert result.exit_code == 0, result.output
    assert "going on without the deploy journal" in _flat(result.stderr)
    unreadable = {u["what"]: u["why"] for u in json.loads(result.stdout)["unreadable"]}
    assert "cannot be reached" in unreadable[f"the deploy journal of {SERVICE} (unreachable)"]
    assert "the monitor's alert history (unreachable)" in unreadable

    listed = site.cli("incidents", "--env", ENV, "--state", down)
    assert listed.exit_code == 0, listed.output
    assert "could not read the deploy journal" in _flat(listed.stderr)
