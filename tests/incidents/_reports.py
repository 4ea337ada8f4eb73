"""Running the real CLI on an incident, and reading what it wrote.

``run_reports`` runs ``rollsafe incidents`` and ``rollsafe why`` (JSON, Markdown, HTML, and
the default: the most recent episode) as processes, the ``why`` runs side by side;
``Verdicts`` collects named checks so that one run shows every gap of a report at once. The
readers pick a report's parts apart: which evidence a why cites, the text the report writes
itself (evidence excerpts are quotes and are left out), a Markdown section.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import typer.main

from rollsafe.cli import app as cli_app
from tests.deploy.conftest import ENV, SERVICE, Site
from tests.incidents._scenarios import Incident, rfc3339

__all__ = [
    "HINDSIGHT",
    "STATUS",
    "Reports",
    "Verdicts",
    "cli_problems",
    "own_words",
    "run_reports",
    "section",
    "sources",
    "text_of",
    "unquoted_html",
    "unquoted_markdown",
    "why_citing",
    "whys",
]

#: the words an incident review never uses about people (Allspaw, Leveson)
HINDSIGHT = re.compile(
    r"should have|shouldn't have|failed to|if only|could have|human error", re.IGNORECASE
)
#: a three-digit 5xx HTTP status in prose (not part of a time, a name, a number or ">= 500")
STATUS = re.compile(r"(?<![\w.:/#-])(?<![<>]= )(5\d\d)(?![\w.:%])")
_ROLLSAFE = Path(sys.executable).with_name("rollsafe")


@dataclass
class Verdicts:
    """Named checks of one scenario: all are made, then ``done`` prints each and fails the
    test with every failed one."""

    scenario: str
    rows: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: object, detail: object = "") -> bool:
        self.rows.append((name, bool(ok), "" if ok else str(detail)[:1500]))
        return bool(ok)

    def done(self) -> None:
        for name, ok, detail in self.rows:
            print(
                f"[{self.scenario}] {'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" * (not ok))
            )
        failed = [f"{name}: {detail}" for name, ok, detail in self.rows if not ok]
        assert not failed, f"{len(failed)} check(s) failed:\n" + "\n".join(failed)


# -- the CLI --------------------------------------------------------------------------


@dataclass
class Reports:
    """What the real CLI said about one incident."""

    episodes: list[dict[str, Any]]
    episode: dict[str, Any] | None
    listing: str
    report: dict[str, Any]
    json_text: str
    markdown: str
    html: str
    since: float
    until: float
    #: every stdout and stderr, by command
    outputs: dict[str, tuple[int, str, str]]


def _start(site: Site, *args: str) -> subprocess.Popen[str]:
    argv = [str(_ROLLSAFE), args[0], "--env", ENV, "-f", str(site.manifest), *args[1:]]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=site.root
    )


def _finish(runs: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int, str, str]]:
    done = {}
    for name, run in runs.items():
        try:
            out, err = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
            out, err = run.communicate()
        done[name] = (run.returncode, out, err)
    return done


def run_reports(incident: Incident) -> Reports:
    """``rollsafe incidents`` and ``rollsafe why`` in the three formats, as processes run
    side by side.

    JSON and HTML cover ``--since`` (before the incident) ``--until`` (now), so they report
    the same window; the Markdown is asked for by ``--incident`` with the id ``incidents
    --format json`` listed, as a user would; ``why`` alone reports the most recent episode."""
    site = incident.site
    since, until = incident.started - 1.0, time.time()
    window = ["--since", rfc3339(since), "--until", rfc3339(until)]
    html = site.root / "report.html"
    runs = {
        "why json": _start(site, "why", *window, "--format", "json"),
        "why html": _start(site, "why", *window, "--format", "html", "-o", str(html)),
        "incidents text": _start(site, "incidents", "--since", "1h"),
        # neither --incident nor --since: the most recent episode
        "why latest": _start(site, "why", "--format", "json"),
    }
    listed = _finish(
        {"incidents json": _start(site, "incidents", "--since", "1h", "--format", "json")}
    )
    code, out, _ = listed["incidents json"]
    episodes: list[dict[str, Any]] = []
    if code == 0:
        with contextlib.suppress(ValueError, AttributeError):
            episodes = list(json.loads(out).get("episodes", []))
    ours = [e for e in episodes if SERVICE in e.get("services", ())]
    episode = ours[0] if ours else None
    if episode is not None:
        runs["why markdown"] = _start(
            site, "why", "--incident", episode["id"], "--format", "markdown"
        )
    outputs = {**listed, **_finish(runs)}
    for name, (_, out, err) in outputs.items():  # kept in tmp_path, for a failed run's reader
        stem = name.replace(" ", "-")
        (site.root / f"{stem}.out").write_text(out, encoding="utf-8")
        (site.root / f"{stem}.err").write_text(err, encoding="utf-8")
    report: dict[str, Any] = {}
    json_code, json_text, _ = outputs["why json"]
    if json_code == 0:
        try:
            report = json.loads(json_text)
        except ValueError:
            report = {}
    return Reports(
        episodes=episodes,
        episode=episode,
        listing=outputs["incidents text"][1],
        report=report,
        json_text=json_text,
        markdown=outputs.get("why markdown", (1, "", ""))[1],
        html=html.read_text(encoding="utf-8") if html.exists() else "",
        since=since,
        until=until,
        outputs=outputs,
    )


# -- reading the report -------------------------------------------------------------


def whys(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report.get("whys") or [])


def text_of(item: dict[str, Any]) -> str:
    return " ".join(str(item.get(k) or "") for k in ("claim", "because", "text", "command"))


def sources(report: dict[str, Any], ids: Iterable[str]) -> list[str]:
    by_id = {e["id"]: e for e in report.get("evidence") or []}
    return [by_id[i]["source"] for i in ids if i in by_id]


def why_citing(
    report: dict[str, Any], cites: Callable[[str], bool], says: str | None = None
) -> int | None:
    """Index of the first why that cites a source ``cites`` accepts (and whose text matches
    the regex ``says``), else None."""
    for index, why in enumerate(whys(report)):
        if any(cites(s) for s in sources(report, why.get("evidence") or ())) and (
            says is None or re.search(says, text_of(why), re.IGNORECASE)
        ):
            return index
    return None


def own_words(report: dict[str, Any]) -> list[str]:
    """Every text the report writes itself (evidence excerpts are quotes, left out)."""
    texts = [str((report.get("summary") or {}).get("text") or "")]
    texts += [str((report.get("summary") or {}).get("title") or "")]
    for part in ("whys", "factors", "actions", "went_well", "timeline"):
        texts += [text_of(item) for item in report.get(part) or []]
    texts += [
        f"{g.get('after', '')} {g.get('missing', '')} {g.get('how', '')}"
        for g in report.get("gaps") or []
    ]
    return texts


def unquoted_markdown(markdown: str) -> str:
    """The Markdown without code spans and blocks and without the evidence table (quotes)."""
    body = markdown.split("## Supporting information")[0]
    body = re.sub(r"```.*?```", "", body, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", body)


def unquoted_html(html: str) -> str:
    body = re.sub(r"<(code|pre|script|style)\b.*?</\1>", "", html, flags=re.DOTALL | re.I)
    return re.sub(r"<[^>]+>", " ", body)


def section(markdown: str, heading: str) -> str:
    match = re.search(
        rf"^##+ {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S | re.I
    )
    return match.group(1) if match else ""


def cli_problems(command: str) -> list[str]:
    """What is wrong with each ``rollsafe ...`` in an action's command: an unknown command,
    option or argument, as the real CLI's parser says (nothing is run)."""
    group = typer.main.get_command(cli_app)
    problems = []
    for part in command.split("|"):
        try:
            words = shlex.split(part)
        except ValueError as exc:
            problems.append(f"{command!r}: {exc}")
            continue
        if "rollsafe" not in words:
            continue
        args = words[words.index("rollsafe") + 1 :]
        cmd: click.Command = group
        path = ["rollsafe"]
        while isinstance(cmd, click.Group) and args and args[0] in cmd.commands:
            path.append(args[0])
            cmd = cmd.commands[args.pop(0)]
        if isinstance(cmd, click.Group):
            problems.append(f"{command!r}: no such command")
            continue
        try:
            cmd.make_context(" ".join(path), list(args))
        except click.ClickException as exc:
            problems.append(f"{command!r}: {exc.format_message()}")
    return problems
